-- The second factor (TOTP, RFC 6238) of the accounts that enrolled: the secret, in base32,
-- kept to compute the codes (a hash would not do); confirmed once the person typed a code
-- from it; the last step a code was accepted for, so that none is accepted twice.
create table two_factor (
    user_id integer primary key references app_user (id),
    secret text not null,
    confirmed_at text,
    last_step integer,
    created_at text not null
);

-- Recovery codes, each good for one login instead of a code: their SHA-256 only.
create table recovery_code (
    user_id integer not null references app_user (id),
    code_hash text not null,
    used_at text,
    primary key (user_id, code_hash)
);

-- A login whose password was right and that waits for its second factor: the hash of
-- the token handed to the client for the second step, short-lived.
create table login_challenge (
    token_hash text primary key,
    user_id integer not null references app_user (id),
    expires_at text not null
);
create index login_challenge_user on login_challenge (user_id);
