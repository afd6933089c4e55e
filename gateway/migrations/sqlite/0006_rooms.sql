-- Video rooms of booked sessions (SQLite): who was present when, settings the gateway
-- generates once (the room-token secret), and the ward's own team on a ward round.

create table setting (
    key text primary key,
    value text not null
);

-- One stretch of presence in a session's room, from the signaling layer: the evidence
-- that a consultation or ward round took place, and for how long.
create table room_presence (
    id integer primary key,
    room text not null,
    user_id integer not null references app_user (id),
    joined_at text not null,
    left_at text
);
create index room_presence_room on room_presence (room, user_id);

alter table ward_round add column ward_team_id integer references team (id);
