//! The text chat of a session's room, kept with the session (for a consultation, with its
//! request): the people the booking names write while the room is open; they, the
//! coordinators of the institutions involved and administrators read it then and later.
//! Every message written, every read that shows messages and every refusal is audited,
//! as reads of the request are.

use chrono::{DateTime, Utc};

use super::{SessionRef, booked};
use crate::config::SignalingConfig;
use crate::domain::{Role, User};
use crate::rules::{Error, Rule};
use crate::store::{RoomMessage, Store};

/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// The most messages one read returns.
pub const MAX_READ: i64 = 200;

fn audit_id(session: SessionRef) -> i64 {
    match session {
        SessionRef::Consultation(id) | SessionRef::WardRound(id) | SessionRef::Teaching(id) => id,
    }
}

/// Writes `body` into the chat of `session` as `caller` at `now`.
pub async fn post(
    store: &Store,
    config: &SignalingConfig,
    session: SessionRef,
    caller: &User,
    body: &str,
    now: DateTime<Utc>,
) -> Result<RoomMessage, Error> {
    let body = body.trim();
    if body.is_empty() {
        return Err(Error::field("body", "the message is empty"));
    }
    if body.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Error::field(
            "body",
            format!("a message has at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let b = booked(store, config, session, caller).await?;
    let audit = |allowed: bool, detail: &str| {
        crate::audit::record(
            store,
            caller,
            session.audit_kind(),
            "post_message",
            Some(audit_id(session)),
            allowed,
            Some(detail.to_owned()),
        )
    };
    if b.named.is_none() {
        audit(false, "not named by the booking").await?;
        return Err(super::not_named(session));
    }
    let (opens, closes) = b.window(config);
    if !b.open || now < opens || now > closes {
        audit(false, "the room is not open").await?;
        return Err(Error::refused(
            Rule::SessionNotOpen,
            None,
            format!("the chat of {session} takes messages while its room is open"),
        ));
    }
    let room = session.to_string();
    let Some(id) = store
        .room_message_add(&room, caller.id, body, now, config.chat_max_messages)
        .await?
    else {
        audit(false, "the chat is full").await?;
        return Err(Error::Conflict(crate::text!(
            "problem.chat-full",
            "the chat of {session} keeps at most {n} messages",
            session = session,
            n = config.chat_max_messages
        )));
    };
    audit(true, &room).await?;
    let name = super::brief::label(store, caller).await?.0;
    Ok(RoomMessage {
        id,
        user_id: caller.id,
        name,
        body: body.to_owned(),
        created_at: now,
    })
}

/// The messages of `session`'s chat after message `after`, at most `limit`.
pub async fn read(
    store: &Store,
    config: &SignalingConfig,
    session: SessionRef,
    caller: &User,
    after: i64,
    limit: i64,
) -> Result<Vec<RoomMessage>, Error> {
    if after < 0 {
        return Err(Error::field("after", "a message id is 0 or more"));
    }
    if !(1..=MAX_READ).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("between 1 and {MAX_READ} messages"),
        ));
    }
    let b = booked(store, config, session, caller).await?;
    let allowed = caller.is(Role::Admin)
        || b.named.is_some()
        || (caller.is(Role::Coordinator) && b.institutions.contains(&caller.institution_id));
    let room = session.to_string();
    if !allowed {
        crate::audit::record(
            store,
            caller,
            session.audit_kind(),
            "read_messages",
            Some(audit_id(session)),
            false,
            Some(room),
        )
        .await?;
        return Err(Error::forbidden(
            "the people of the session, their institutions' coordinators and administrators",
        ));
    }
    let messages = store.room_messages(&room, after, limit).await?;
    if let (Some(first), Some(last)) = (messages.first(), messages.last()) {
        crate::audit::record(
            store,
            caller,
            session.audit_kind(),
            "read_messages",
            Some(audit_id(session)),
            true,
            Some(format!("{room} messages {}–{}", first.id, last.id)),
        )
        .await?;
    }
    Ok(messages)
}
