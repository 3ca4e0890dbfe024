//! What the classic exercises beside the chat agree on: their pages' paths, the server's
//! greeting, the random ticker's bounds, and the binary frames' pattern and checksum.

/// The exercise pages' paths. They are an app of their own (a second wasm, built into
/// [`PAGES_DIR`] of the page's files), so the chat's first visit does not download them: the
/// server answers these paths with that app's `index.html`, and the chat's links to them are
/// page loads.
pub const PAGES: [&str; 5] = [
    "/echo",
    "/random",
    "/products",
    "/realtimeproducts",
    "/transports",
];

/// Where, under the page's files, the exercises' app is built (`dist/exercises/`).
pub const PAGES_DIR: &str = "exercises";

/// Whether `path` (without query) is one of the exercise pages.
pub fn is_page(path: &str) -> bool {
    PAGES.contains(&path)
}

/// What the server says to every connection in its `welcome` (the course's
/// `{"digo": "Hola cliente WS!"}`).
pub const GREETING: &str = "Hola cliente WS!";

/// The shortest interval a random ticker may have, in milliseconds.
pub const MIN_TICKER_MS: u32 = 100;
/// The longest interval a random ticker may have, in milliseconds (one hour).
pub const MAX_TICKER_MS: u32 = 3_600_000;
/// The most tickers one connection may run at once.
pub const MAX_TICKERS_PER_CONN: usize = 5;
/// The random numbers' range, inclusive.
pub const RANDOM_RANGE: std::ops::RangeInclusive<u32> = 1..=1_000;

/// The binary frame sizes the page offers: 256 B (a 16-bit extended length on the wire, the
/// smallest size that needs one past 125) and 64 KiB (a 64-bit extended length).
pub const BINARY_SIZES: [u32; 2] = [256, 65_536];
/// The largest binary frame a client may ask for.
pub const MAX_BINARY_BYTES: u32 = 65_536;

/// The bytes of a binary frame of `size` bytes: byte `i` is `i mod 251` (251 is prime, so the
/// pattern does not line up with any power-of-two boundary a bug might hide behind).
pub fn binary_pattern(size: u32) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// The 32-bit FNV-1a hash of `bytes`: the checksum the server announces and the page checks.
pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_published_vectors() {
        assert_eq!(checksum(b""), 0x811c_9dc5);
        assert_eq!(checksum(b"a"), 0xe40c_292c);
        assert_eq!(checksum(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn the_pattern_wraps_at_251() {
        let bytes = binary_pattern(256);
        assert_eq!(bytes.len(), 256);
        assert_eq!((bytes[250], bytes[251], bytes[255]), (250, 0, 4));
        assert_ne!(
            checksum(&binary_pattern(65_536)),
            checksum(&binary_pattern(256))
        );
    }
}
