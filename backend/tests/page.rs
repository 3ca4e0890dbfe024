//! How the page's files are served: precompressed (brotli, else gzip, else as they are, by
//! the browser's Accept-Encoding), trunk's hashed files cacheable for good, `index.html` and
//! the client-side routes checked on every visit.

#![allow(missing_docs)]

use testkit::{TestServer, fresh_data_dir, request};

const WASM: &str = "/frontend-70569a3a65da4c87_bg.wasm";

/// A dist directory with a hashed file and an index, each with its .br and .gz copies (their
/// contents say which copy they are, so the test sees which one was sent).
fn dist() -> std::path::PathBuf {
    let dir = fresh_data_dir();
    std::fs::create_dir_all(&dir).expect("dist");
    std::fs::create_dir_all(dir.join("exercises")).expect("exercises");
    for name in [&WASM[1..], "index.html", "exercises/index.html"] {
        std::fs::write(dir.join(name), format!("{name} as is")).expect("write");
        std::fs::write(dir.join(format!("{name}.gz")), format!("{name} gzip")).expect("write");
        std::fs::write(dir.join(format!("{name}.br")), format!("{name} brotli")).expect("write");
    }
    dir
}

#[tokio::test]
async fn files_go_precompressed_by_accept_encoding_and_hashed_ones_are_cached_for_good() {
    let dist = dist();
    let server = TestServer::start_with(backend::Config {
        dist: dist.clone(),
        ..backend::Config::default()
    })
    .await;
    let name = &WASM[1..];
    for (accepts, encoding, body) in [
        (
            Some("gzip, deflate, br, zstd"),
            Some("br"),
            format!("{name} brotli"),
        ),
        (Some("gzip"), Some("gzip"), format!("{name} gzip")),
        (None, None, format!("{name} as is")),
    ] {
        let headers: Vec<(&str, &str)> = accepts
            .map(|a| ("Accept-Encoding", a))
            .into_iter()
            .collect();
        let response = request(server.addr, "GET", WASM, &headers, b"").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-encoding"), encoding, "{accepts:?}");
        assert_eq!(response.body, body, "{accepts:?}");
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(response.header("content-type"), Some("application/wasm"));
    }
    // The index, and a client-side route that serves it, are revalidated on every visit;
    // so is the exercises' app's index, on the exercise pages' paths.
    for (path, index) in [
        ("/", "index.html"),
        ("/r/dev", "index.html"),
        ("/no/such/page", "index.html"),
        ("/random", "exercises/index.html"),
        ("/echo", "exercises/index.html"),
        ("/exercises/index.html", "exercises/index.html"),
    ] {
        let response = request(server.addr, "GET", path, &[("Accept-Encoding", "br")], b"").await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(response.body, format!("{index} brotli"), "{path}");
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(dist);
}
