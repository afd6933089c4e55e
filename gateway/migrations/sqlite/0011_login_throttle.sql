-- Login attempts are counted per client address and per (address, username) pair, each
-- under its own key, within a window that starts over once it has passed.
drop table login_throttle;
create table login_throttle (
    throttle_key text primary key,
    attempts integer not null,
    window_start text not null,
    locked_until text
);
