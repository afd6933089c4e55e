-- The text chat of a session's room (SQLite), kept with the session: for a consultation
-- with its request (`room` is `consultation-<request id>`). Messages are never changed.
create table room_message (
    id integer primary key,
    room text not null,
    user_id integer not null references app_user (id),
    body text not null,
    created_at text not null
);
create index room_message_of_room on room_message (room, id);
