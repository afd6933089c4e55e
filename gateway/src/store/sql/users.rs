//! Accounts, login sessions, login throttling and second factors. Compiled once per backend (see
//! `store/mod.rs`). Session tokens are stored only as hashes.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Db, Pool};
use crate::domain::{Roles, User};
use crate::store::{NewUser, StoreError, TwoFactor};

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    institution_id: i64,
    clinician_id: Option<i64>,
    roles: String,
    disabled: bool,
    must_change_password: bool,
    last_login_at: Option<DateTime<Utc>>,
    two_factor: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            roles: Roles::parse(&r.roles)
                .map_err(|e| StoreError::Corrupt(format!("user {}: {e}", r.id)))?,
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            institution_id: r.institution_id,
            clinician_id: r.clinician_id,
            disabled: r.disabled,
            must_change_password: r.must_change_password,
            last_login_at: r.last_login_at,
            two_factor: r.two_factor,
        })
    }
}

const COLUMNS: &str = "u.id, u.username, u.display_name, u.institution_id, u.clinician_id, \
     u.roles, u.disabled, u.must_change_password, u.last_login_at, \
     exists (select 1 from two_factor t where t.user_id = u.id and t.confirmed_at is not null) \
     as two_factor";

/// Number of accounts.
pub async fn count(pool: &Pool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar::<Db, i64>("select count(*) from app_user")
            .fetch_one(pool)
            .await?,
    )
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, Db>,
    new: &NewUser,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let institution =
        sqlx::query_scalar::<Db, i64>("select count(*) from institution where id = $1")
            .bind(new.institution_id)
            .fetch_one(&mut **tx)
            .await?;
    if institution == 0 {
        return Err(StoreError::Invalid {
            field: "institution_id",
            message: format!("no institution has id {}", new.institution_id),
        });
    }
    if let Some(c) = new.clinician_id {
        let of_institution = sqlx::query_scalar::<Db, i64>(
            "select count(*) from clinician where id = $1 and institution_id = $2",
        )
        .bind(c)
        .bind(new.institution_id)
        .fetch_one(&mut **tx)
        .await?;
        if of_institution == 0 {
            return Err(StoreError::Invalid {
                field: "clinician_id",
                message: format!(
                    "no clinician {c} works at institution {}",
                    new.institution_id
                ),
            });
        }
    }
    sqlx::query_scalar::<Db, i64>(
        "insert into app_user (username, display_name, institution_id, clinician_id, roles,
             password_hash, disabled, must_change_password, created_at)
         values ($1, $2, $3, $4, $5, $6, false, $7, $8) returning id",
    )
    .bind(&new.username)
    .bind(&new.display_name)
    .bind(new.institution_id)
    .bind(new.clinician_id)
    .bind(new.roles.to_stored())
    .bind(&new.password_hash)
    .bind(new.one_time_password)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| StoreError::unique(e, format!("user {}", new.username)))
}

/// Creates an account.
#[tracing::instrument(skip_all)]
pub async fn create(pool: &Pool, new: &NewUser, now: DateTime<Utc>) -> Result<User, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let id = insert(&mut tx, new, now).await?;
    tx.commit().await?;
    user(pool, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("inserted user vanished".into()))
}

/// Creates `new` if and only if no account exists, in one transaction. Two processes
/// starting together cannot both succeed: the second one's insert conflicts or sees the
/// first one's row.
#[tracing::instrument(skip_all)]
pub async fn create_first(
    pool: &Pool,
    new: &NewUser,
    now: DateTime<Utc>,
) -> Result<Option<User>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let existing = sqlx::query_scalar::<Db, i64>("select count(*) from app_user")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Ok(None);
    }
    let id = match insert(&mut tx, new, now).await {
        Ok(id) => id,
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    user(pool, id).await
}

/// One account.
pub async fn user(pool: &Pool, id: i64) -> Result<Option<User>, StoreError> {
    let row =
        sqlx::query_as::<Db, UserRow>(&format!("select {COLUMNS} from app_user u where u.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(User::try_from).transpose()
}

#[derive(sqlx::FromRow)]
struct UserHashRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

/// An account with its password hash.
pub async fn with_hash(pool: &Pool, username: &str) -> Result<Option<(User, String)>, StoreError> {
    let row = sqlx::query_as::<Db, UserHashRow>(&format!(
        "select {COLUMNS}, u.password_hash from app_user u where u.username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((User::try_from(r.user)?, r.password_hash)))
        .transpose()
}

/// Accounts, optionally of one institution.
pub async fn list(pool: &Pool, institution_id: Option<i64>) -> Result<Vec<User>, StoreError> {
    let rows = sqlx::query_as::<Db, UserRow>(&format!(
        "select {COLUMNS} from app_user u where ($1 is null or u.institution_id = $1) order by u.id"
    ))
    .bind(institution_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(User::try_from).collect()
}

/// Replaces the password hash and ends the user's sessions, in one transaction: every
/// session but `keep` (the one of a user changing their own password), and marks whether
/// the new password is one-time (set by someone else) or the user's own.
pub async fn set_password(
    pool: &Pool,
    user_id: i64,
    hash: &str,
    one_time: bool,
    keep: Option<&str>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let changed = sqlx::query::<Db>(
        "update app_user set password_hash = $2, must_change_password = $3 where id = $1",
    )
    .bind(user_id)
    .bind(hash)
    .bind(one_time)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    sqlx::query::<Db>(
        "delete from user_session where user_id = $1 and ($2 is null or token_hash <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Records a successful login of `user_id`.
pub async fn logged_in(pool: &Pool, user_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query::<Db>("update app_user set last_login_at = $2 where id = $1")
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Disables or enables an account; disabling ends every session of it, in the same
/// transaction. The account as it now is, or `None` when there is none.
pub async fn set_disabled(
    pool: &Pool,
    user_id: i64,
    disabled: bool,
) -> Result<Option<User>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let changed = sqlx::query::<Db>("update app_user set disabled = $2 where id = $1")
        .bind(user_id)
        .bind(disabled)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    if disabled {
        sqlx::query::<Db>("delete from user_session where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    user(pool, user_id).await
}

/// Records a session.
pub async fn create_session(
    pool: &Pool,
    token_hash: &str,
    user_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into user_session (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    expires_at: DateTime<Utc>,
}

/// The user of an unexpired session; expired sessions are removed when met.
pub async fn session_user(
    pool: &Pool,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<User>, StoreError> {
    let row = sqlx::query_as::<Db, SessionRow>(&format!(
        "select {COLUMNS}, s.expires_at from user_session s join app_user u on u.id = s.user_id
         where s.token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(r) if r.expires_at > now && !r.user.disabled => Ok(Some(User::try_from(r.user)?)),
        Some(_) => {
            delete_session(pool, token_hash).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Ends a session.
pub async fn delete_session(pool: &Pool, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query::<Db>("delete from user_session where token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts a login attempt under each of `keys` (a throttle key and the attempts it
/// allows in a row), before its password is checked, so that attempts made at once all
/// count. Returns until when the attempt is held back, without counting it, if any key
/// is locked. Once a key has had its free attempts, each further attempt locks it for a
/// doubling delay (1 s, 2 s, 4 s … at most `max_delay_seconds`); counts start over once
/// `window_seconds` have passed since a key's first attempt.
pub async fn count_login_attempt(
    pool: &Pool,
    keys: &[(String, u32)],
    window_seconds: i64,
    max_delay_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    // Each key's row is counted and locked (PostgreSQL holds it to the commit) in one
    // statement, keys always in the same order: attempts made at once are counted one
    // after the other.
    let mut counted = Vec::with_capacity(keys.len());
    let mut held = None;
    for (key, free) in keys {
        let (attempts, locked_until) = sqlx::query_as::<Db, (i32, Option<DateTime<Utc>>)>(
            "insert into login_throttle (throttle_key, attempts, window_start, locked_until)
             values ($1, 1, $2, null)
             on conflict (throttle_key) do update set
                attempts = case when login_throttle.window_start < $3 then 1
                    else login_throttle.attempts + 1 end,
                window_start = case when login_throttle.window_start < $3 then $2
                    else login_throttle.window_start end
             returning attempts, locked_until",
        )
        .bind(key)
        .bind(now)
        .bind(now - TimeDelta::seconds(window_seconds))
        .fetch_one(&mut *tx)
        .await?;
        if let Some(until) = locked_until.filter(|until| *until > now) {
            held = held.max(Some(until));
        }
        counted.push((key, *free, attempts));
    }
    if held.is_some() {
        // Held back: not counted.
        tx.rollback().await?;
        return Ok(held);
    }
    for (key, free, attempts) in counted {
        let over = i64::from(attempts) - i64::from(free);
        if over < 0 {
            continue;
        }
        let delay = 1_i64
            .checked_shl(over.min(30) as u32)
            .unwrap_or(i64::MAX)
            .min(max_delay_seconds);
        sqlx::query::<Db>("update login_throttle set locked_until = $2 where throttle_key = $1")
            .bind(key)
            .bind(now + TimeDelta::seconds(delay))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Keys whose window has passed and that hold nothing back are dropped, after the
    // commit and skipping rows other logins hold: inside the transaction, on PostgreSQL,
    // two logins could each wait for a row the other holds.
    let prune = format!(
        "delete from login_throttle where throttle_key in (select throttle_key
            from login_throttle where window_start < $1
            and (locked_until is null or locked_until < $2){})",
        super::SKIP_LOCKED
    );
    let pruned = sqlx::query::<Db>(&prune)
        .bind(now - TimeDelta::seconds(window_seconds))
        .bind(now)
        .execute(pool)
        .await;
    if let Err(e) = pruned {
        tracing::warn!(error = %e, "cannot prune the login throttle");
    }
    Ok(None)
}

/// After a successful login: forgets the attempts under `forget`, and takes back the
/// attempt counted under `uncount` (a key of many users, such as their address),
/// unlocking it if that leaves it within its `free` attempts.
pub async fn login_succeeded(
    pool: &Pool,
    forget: &str,
    (uncount, free): (&str, u32),
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    sqlx::query::<Db>("delete from login_throttle where throttle_key = $1")
        .bind(forget)
        .execute(&mut *tx)
        .await?;
    sqlx::query::<Db>(
        "update login_throttle set attempts = attempts - 1,
            locked_until = case when attempts - 1 < $2 then null else locked_until end
         where throttle_key = $1 and attempts > 0",
    )
    .bind(uncount)
    .bind(i64::from(free))
    .execute(&mut *tx)
    .await?;
    // An address left with no attempts is forgotten.
    sqlx::query::<Db>("delete from login_throttle where throttle_key = $1 and attempts <= 0")
        .bind(uncount)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `user_id`'s second factor, if any.
pub async fn two_factor(pool: &Pool, user_id: i64) -> Result<Option<TwoFactor>, StoreError> {
    Ok(sqlx::query_as::<Db, TwoFactor>(
        "select secret, confirmed_at is not null as confirmed, last_step
         from two_factor where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Begins (or begins again) `user_id`'s enrolment with `secret`, unless a second factor
/// is confirmed already: false then.
pub async fn begin_two_factor(
    pool: &Pool,
    user_id: i64,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query::<Db>(
        "insert into two_factor (user_id, secret, confirmed_at, last_step, created_at)
         values ($1, $2, null, null, $3)
         on conflict (user_id) do update set secret = excluded.secret,
            created_at = excluded.created_at, last_step = null
         where two_factor.confirmed_at is null",
    )
    .bind(user_id)
    .bind(secret)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Takes `step` as used for `user_id`'s codes if it is later than the last one used:
/// whether it was (a code is accepted once only, even by two requests at once).
pub async fn use_step(pool: &Pool, user_id: i64, step: i64) -> Result<bool, StoreError> {
    let changed = sqlx::query::<Db>(
        "update two_factor set last_step = $2
         where user_id = $1 and confirmed_at is not null and (last_step is null or last_step < $2)",
    )
    .bind(user_id)
    .bind(step)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Confirms `user_id`'s enrolment with a code of `step`, replacing any recovery codes by
/// those hashed in `code_hashes`, in one transaction; false when there is no enrolment
/// begun (or it is confirmed already).
pub async fn confirm_two_factor(
    pool: &Pool,
    user_id: i64,
    step: i64,
    code_hashes: &[String],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let changed = sqlx::query::<Db>(
        "update two_factor set confirmed_at = $2, last_step = $3
         where user_id = $1 and confirmed_at is null",
    )
    .bind(user_id)
    .bind(now)
    .bind(step)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    sqlx::query::<Db>("delete from recovery_code where user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for hash in code_hashes {
        sqlx::query::<Db>("insert into recovery_code (user_id, code_hash) values ($1, $2)")
            .bind(user_id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Removes `user_id`'s second factor, recovery codes and pending logins; whether there
/// was one.
pub async fn remove_two_factor(pool: &Pool, user_id: i64) -> Result<bool, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    for table in ["recovery_code", "login_challenge"] {
        sqlx::query::<Db>(&format!("delete from {table} where user_id = $1"))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    let removed = sqlx::query::<Db>("delete from two_factor where user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(removed == 1)
}

/// Uses `user_id`'s unused recovery code hashed `code_hash`: the codes left unused after
/// it, or `None` when it is no such code.
pub async fn use_recovery_code(
    pool: &Pool,
    user_id: i64,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let used = sqlx::query::<Db>(
        "update recovery_code set used_at = $3
         where user_id = $1 and code_hash = $2 and used_at is null",
    )
    .bind(user_id)
    .bind(code_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if used == 0 {
        return Ok(None);
    }
    let left = sqlx::query_scalar::<Db, i64>(
        "select count(*) from recovery_code where user_id = $1 and used_at is null",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(left))
}

/// Records a login waiting for its second factor; expired ones are dropped on the way.
pub async fn create_login_challenge(
    pool: &Pool,
    token_hash: &str,
    user_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>("delete from login_challenge where expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query::<Db>(
        "insert into login_challenge (token_hash, user_id, expires_at) values ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The account of an unexpired login waiting for its second factor.
pub async fn login_challenge_user(
    pool: &Pool,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<User>, StoreError> {
    let row = sqlx::query_as::<Db, UserRow>(&format!(
        "select {COLUMNS} from login_challenge c join app_user u on u.id = c.user_id
         where c.token_hash = $1 and c.expires_at > $2"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    row.map(User::try_from).transpose()
}

/// Ends a login waiting for its second factor (it completed).
pub async fn delete_login_challenge(pool: &Pool, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query::<Db>("delete from login_challenge where token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}
