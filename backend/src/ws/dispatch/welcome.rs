//! The welcome: a connection's sign-in, its session (opened or resumed, and durable before
//! anything is said), the `welcome` frame and the rooms its `hello` names.

use std::collections::BTreeMap;

use shared::{DisplayName, ErrorCode, RoomName, Seq, ServerMsg, limits::PROTOCOL_VERSION};

use tokio::sync::oneshot;

use super::super::connection::{Arrival, Connection, Hello, Refused, Who};
use crate::{
    committer::{Job, SessionJob},
    hub::{After, Greeting, JoinRefused, OpenRefused, Opened, SessionChanges},
    outbox::{CloseReason, Frame},
};

impl Arrival {
    /// Welcomes the connection once its session is durable: a v1 one (`hello` is `None`)
    /// as a new session in `general`, whose lines are the `welcome`'s `history`; a v2 one as
    /// its `hello` says (the session to resume, the rooms to rejoin with the last `seq` held
    /// in each, its name), with a `joined` per room after the `welcome`.
    pub(crate) async fn welcome(mut self, hello: Option<Hello>) -> Result<Connection, CloseReason> {
        let v1 = hello.is_none();
        let Hello {
            resume,
            rooms,
            name,
            token,
        } = hello.unwrap_or_default();
        if let Err((refused, close)) = self.sign_in.check(token) {
            self.send_error(refused);
            return Err(close);
        }
        let (name, bad_name) = self.name_to_use(name.as_deref());
        let resume = resume.filter(|t| !t.is_empty() && t.len() <= 64);
        if let Some(token) = &resume {
            self.ask_the_cluster(token).await?;
        }
        let opened = self.open_session(resume.as_deref(), name).await?;
        let welcome = self.welcome_msg(&opened);
        tracing::info!(
            conn = self.key.0,
            id = %opened.session.id,
            resumed = opened.resumed,
            "client welcomed"
        );
        let who = Who {
            token: opened.token,
            id: opened.session.id,
            name: opened.session.name,
        };
        let mut conn = Connection::new(self, who);
        if v1 {
            conn.join_general_v1(welcome);
            return Ok(conn);
        }
        conn.outbox.push(Frame::encode(&welcome));
        if let Some(why) = bad_name {
            conn.send_error(Refused::new(ErrorCode::BadName, why.to_string()));
        }
        conn.join_hello_rooms(rooms);
        Ok(conn)
    }

    /// The name to open the session with, and why the asked one was refused, if it was. A
    /// signed-in user is called what their token says, when it says; else what the hello
    /// asks for; else by their id (if it makes a display name).
    pub(super) fn name_to_use(
        &self,
        asked: Option<&str>,
    ) -> (Option<DisplayName>, Option<shared::NameError>) {
        let (mut name, bad_name) = match asked.map(DisplayName::parse) {
            Some(Ok(name)) => (Some(name), None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
        if let Some(user) = &self.sign_in.user {
            if let Some(from_token) = user.name.clone() {
                name = Some(from_token);
            } else if name.is_none() {
                name = DisplayName::parse(user.id.as_str()).ok();
            }
        }
        (name, bad_name)
    }

    /// With `--redis`, the shared store is the truth about a resume token: one made on
    /// another server is adopted, one rotated or forgotten there is so here too. Without an
    /// answer the client must come back later (`Busy`), not get a new id: its resent lines
    /// would then count as someone else's.
    pub(super) async fn ask_the_cluster(&self, token: &str) -> Result<(), CloseReason> {
        let Some(cluster) = &self.app.cluster else {
            return Ok(());
        };
        let known = self.app.hub.sessions.knows(token);
        match cluster.find_session(token).await {
            Ok(Some(stored)) => self.app.hub.sessions.adopt(stored),
            Ok(None) if known => self.app.hub.sessions.forget_unshared(token),
            Ok(None) => {}
            Err(_unreachable) => return Err(CloseReason::Busy),
        }
        Ok(())
    }

    /// Opens (or resumes) the session and waits until it is durable.
    pub(super) async fn open_session(
        &self,
        resume: Option<&str>,
        name: Option<DisplayName>,
    ) -> Result<Opened, CloseReason> {
        let opened = self
            .app
            .hub
            .sessions
            .open(
                resume,
                name,
                self.sign_in.user.as_ref().map(|u| &u.id),
                self.address,
                self.app.hub.sessions.now_ms(),
            )
            .map_err(|refused| match refused {
                OpenRefused::TooManyNew => CloseReason::TooManySessions,
                OpenRefused::TooManyResumes => CloseReason::TooManyResumes,
                OpenRefused::Full => CloseReason::Busy,
            })?;
        let Opened {
            token,
            changes,
            session,
            resumed,
        } = opened;
        if let Err(reason) = self.make_durable(changes).await {
            self.app
                .hub
                .sessions
                .closed(&token, self.app.hub.sessions.now_ms());
            return Err(reason);
        }
        Ok(Opened {
            token,
            changes: SessionChanges::default(),
            session,
            resumed,
        })
    }

    /// The `welcome` of a session just opened.
    pub(super) fn welcome_msg(&self, opened: &Opened) -> ServerMsg {
        let online = self
            .app
            .hub
            .room(&RoomName::general())
            .map_or(0, |general| general.online());
        ServerMsg::Welcome(shared::server::Welcome {
            id: opened.session.id.clone(),
            history: Vec::new(),
            online: u32::try_from(online).unwrap_or(u32::MAX),
            protocol: PROTOCOL_VERSION,
            resume: opened.token.0.clone(),
            has_more: false,
            resumed: opened.resumed,
            name: Some(opened.session.name.clone()),
            limits: Some(self.app.limits.for_clients()),
            greeting: Some(shared::exercises::GREETING.to_owned()),
            user: self.sign_in.user.as_ref().map(|u| u.info()),
        })
    }

    /// Hands session changes to the committer and waits until they are on disk.
    pub(super) async fn make_durable(&self, changes: SessionChanges) -> Result<(), CloseReason> {
        if changes.is_empty() {
            return Ok(());
        }
        let (durable, on_disk) = oneshot::channel();
        let job = Job::Sessions(SessionJob {
            changes,
            durable: Some(durable),
        });
        if self.app.committer.submit(job).is_err() {
            tracing::warn!(
                conn = self.key.0,
                "commit queue full: a session was refused"
            );
            return Err(CloseReason::Busy);
        }
        match on_disk.await {
            Ok(true) => Ok(()),
            _ => Err(CloseReason::Busy),
        }
    }
}

impl Connection {
    /// A v1 connection is in `general` at once, its history in the `welcome` itself.
    pub(super) fn join_general_v1(&mut self, welcome: ServerMsg) {
        let general = RoomName::general();
        let member = self.member();
        let greeting = Greeting::Welcome(Box::new(welcome));
        match self
            .hub
            .join(&general, self.key, member, After::default(), greeting)
        {
            Ok(room) => {
                self.rooms.insert(general, room);
            }
            Err(JoinRefused::RoomsFull) => {
                unreachable!("general always exists: the hub creates it and never forgets it")
            }
        }
    }

    /// Joins the rooms a `hello` names (`general` if none), each after the `seq` it holds.
    /// At most as many rooms as a connection may be in, and so at most that many refusals:
    /// a hello naming thousands of rooms gets one error for the rest.
    pub(super) fn join_hello_rooms(&mut self, rooms: Option<BTreeMap<String, Seq>>) {
        let rooms =
            rooms.unwrap_or_else(|| BTreeMap::from([(RoomName::general().to_string(), Seq(0))]));
        let max = self.limits.max_rooms_per_conn;
        let skipped = rooms.len().saturating_sub(max);
        for (room, after) in rooms.into_iter().take(max) {
            if let Err(refused) = self.join(&room, After(after)) {
                self.send_error(refused);
            }
        }
        if skipped > 0 {
            self.send_error(Refused::new(
                ErrorCode::TooManyRooms,
                format!(
                    "a connection may be in at most {max} rooms: the hello's last {skipped} \
                     were not joined"
                ),
            ));
        }
    }
}
