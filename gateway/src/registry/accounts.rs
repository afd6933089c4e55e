//! Accounts: who sees and who creates them. Administrators see and create the accounts of
//! every institution; coordinators those of their own, never an administrator; everybody
//! else sees their own institution's only.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Event;
use crate::auth::{Hasher, generate_password};
use crate::domain::{Role, Roles, User};
use crate::rules::Error;
use crate::store::{NewUser, Store};

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    /// Login name: 3 to 64 letters, digits, `.`, `_` or `-`.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Institution.
    pub institution_id: i64,
    /// The user's clinician record, at the same institution.
    pub clinician_id: Option<i64>,
    /// Roles, at least one.
    pub roles: Vec<Role>,
    /// Initial password (at least 12 characters); one is generated when left out.
    pub password: Option<String>,
}

/// The created account.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccount {
    /// The account.
    pub user: User,
    /// The generated password, shown this once; absent when the caller chose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
}

/// Checks a login name: 3 to 64 ASCII letters, digits, `.`, `_` or `-`.
pub fn check_username(username: &str) -> Result<(), Error> {
    let ok = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "username",
            "use 3 to 64 letters, digits, '.', '_' or '-'",
        ))
    }
}

const OWN_ONLY: &str = "you may only see the accounts of your own institution";

/// The accounts `by` may see, of `institution_id` when given: administrators any
/// institution's (or all), everybody else their own institution's.
pub async fn accounts(
    store: &Store,
    by: &User,
    institution_id: Option<i64>,
) -> Result<Vec<User>, Error> {
    let scope = match institution_id {
        _ if by.is(Role::Admin) => institution_id,
        Some(id) if id != by.institution_id => return Err(Error::forbidden(OWN_ONLY)),
        _ => Some(by.institution_id),
    };
    Ok(store.users(scope).await?)
}

/// One account, for administrators or members of the same institution.
pub async fn account(store: &Store, by: &User, id: i64) -> Result<User, Error> {
    let user = store
        .user(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
    if !by.is(Role::Admin) && user.institution_id != by.institution_id {
        return Err(Error::forbidden(OWN_ONLY));
    }
    Ok(user)
}

/// Creates an account: administrators for any institution, coordinators for their own
/// (and never an administrator). Without a chosen password one is generated and returned
/// this once.
pub async fn create_account(
    store: &Store,
    hasher: &Hasher,
    by: &User,
    input: AccountInput,
) -> Result<CreatedAccount, Error> {
    let roles = Roles::new(input.roles)
        .ok_or_else(|| Error::field("roles", "at least one role is required"))?;
    if !by.is(Role::Admin) {
        if !by.manages(input.institution_id) {
            return Err(Error::forbidden(
                "only an administrator or the institution's coordinator may add accounts",
            ));
        }
        if roles.contains(Role::Admin) {
            return Err(Error::forbidden(
                "only an administrator may create administrators",
            ));
        }
    }
    let username = input.username.trim().to_owned();
    check_username(&username)?;
    let display_name = input.display_name.trim().to_owned();
    if display_name.is_empty() {
        return Err(Error::field("display_name", "a name to show is required"));
    }
    let (password, generated) = match input.password {
        Some(p) if p.chars().count() < 12 => {
            return Err(Error::field(
                "password",
                "a password has at least 12 characters",
            ));
        }
        Some(p) => (p, false),
        None => (generate_password(), true),
    };
    let password_hash = hasher.hash(password.clone()).await??;
    let new = NewUser {
        username,
        display_name,
        institution_id: input.institution_id,
        clinician_id: input.clinician_id,
        roles,
        password_hash,
        one_time_password: generated,
    };
    let user = store.create_user(&new).await?;
    Event::by(by, "account", "create")
        .id(user.id)
        .detail(format!(
            "{}; roles {}; institution {}",
            user.username,
            user.roles.to_stored(),
            user.institution_id
        ))
        .record(store)
        .await?;
    tracing::info!(user = user.id, by = by.id, "account created");
    Ok(CreatedAccount {
        user,
        initial_password: generated.then_some(password),
    })
}

/// Another person's account that `by` manages: administrators any account,
/// coordinators those of their institution that are not administrators'. Nobody acts on
/// their own account this way (`doing` says what, for the refusal).
/// The account `id`, if `by` manages it (see [`set_disabled`]) and it is not their own;
/// a refusal is audited as `action`.
async fn managed_account(
    store: &Store,
    by: &User,
    id: i64,
    action: &str,
    doing: &str,
) -> Result<User, Error> {
    let refused = |why: &str| {
        Event::by(by, "account", action)
            .id(id)
            .denied()
            .detail(why.to_owned())
            .record(store)
    };
    let Some(user) = store.user(id).await? else {
        refused("no such account").await?;
        return Err(Error::NotFound(format!("user {id}")));
    };
    if !by.is(Role::Admin) && (!by.manages(user.institution_id) || user.is(Role::Admin)) {
        refused("not an account they manage").await?;
        return Err(Error::forbidden(
            "only an administrator, or the institution's coordinator for its other accounts",
        ));
    }
    if user.id == by.id {
        refused("their own account").await?;
        return Err(Error::Conflict(
            format!("you do not {doing}; another administrator or coordinator may").into(),
        ));
    }
    Ok(user)
}

/// Removes another person's second factor (a lost phone and lost recovery codes): they
/// sign in with their password alone, and enrol again where their role requires it.
/// Who may: as [`set_disabled`]. 409 when they have none.
pub async fn reset_two_factor(store: &Store, by: &User, id: i64) -> Result<(), Error> {
    managed_account(
        store,
        by,
        id,
        "reset_two_factor",
        "remove your own second factor here (turn it off on your two-factor page)",
    )
    .await?;
    if !store.remove_two_factor(id).await? {
        return Err(Error::Conflict(
            "this account has no second factor to remove"
                .to_owned()
                .into(),
        ));
    }
    Event::by(by, "account", "reset_two_factor")
        .id(id)
        .record(store)
        .await?;
    tracing::info!(user = id, by = by.id, "second factor removed");
    Ok(())
}

/// A reset password, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetPassword {
    /// The account, which must now change the password at its next login.
    pub user: User,
    /// The new one-time password.
    pub one_time_password: String,
}

/// Resets another person's password to a generated one-time password, which they must
/// replace at their next login; their sessions end. Who may: as [`set_disabled`].
pub async fn reset_password(
    store: &Store,
    hasher: &Hasher,
    by: &User,
    id: i64,
) -> Result<ResetPassword, Error> {
    managed_account(
        store,
        by,
        id,
        "password_reset",
        "reset your own password (change it on your password page)",
    )
    .await?;
    let password = generate_password();
    let hash = hasher.hash(password.clone()).await??;
    if !store.set_password(id, &hash, true, None).await? {
        return Err(Error::NotFound(format!("user {id}")));
    }
    let user = store
        .user(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
    Event::by(by, "account", "password_reset")
        .id(id)
        .detail("to a one-time password".to_owned())
        .record(store)
        .await?;
    tracing::info!(user = id, by = by.id, "password reset");
    Ok(ResetPassword {
        user,
        one_time_password: password,
    })
}

/// Disables an account, which ends its sessions at once, or enables it again:
/// administrators any account, coordinators those of their institution that are not
/// administrators'. Nobody disables their own account.
pub async fn set_disabled(
    store: &Store,
    by: &User,
    id: i64,
    disabled: bool,
) -> Result<User, Error> {
    managed_account(store, by, id, "update", "disable your own account").await?;
    let user = store
        .set_disabled(id, disabled)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
    Event::by(by, "account", "update")
        .id(user.id)
        .detail(if disabled { "disabled" } else { "enabled" }.to_owned())
        .record(store)
        .await?;
    tracing::info!(
        user = user.id,
        by = by.id,
        disabled,
        "account disabled or enabled"
    );
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    #[tokio::test]
    async fn a_coordinator_adds_accounts_to_their_own_institution_only_and_never_an_administrator()
    {
        let f = Fixture::new().await;
        let county = f.institution("甲县人民医院", "county", "general").await;
        let other = f.institution("乙县人民医院", "county", "general").await;
        let coordinator = f.user(&county, "coordinator", None).await;
        let (county, other) = (county.id, other.id);
        let hasher = Hasher::new(1, std::time::Duration::from_secs(5));
        let input = |institution_id, roles: Vec<Role>| AccountInput {
            username: format!("new-{institution_id}-{}", roles.len()),
            display_name: "新用户".into(),
            institution_id,
            clinician_id: None,
            roles,
            password: None,
        };

        let made = create_account(
            &f.store,
            &hasher,
            &coordinator,
            input(county, vec![Role::Clinician]),
        )
        .await
        .unwrap();
        assert_eq!(made.user.institution_id, county);
        assert!(made.initial_password.is_some_and(|p| p.len() >= 12));

        for (institution, roles) in [
            (other, vec![Role::Clinician]),
            (county, vec![Role::Admin, Role::Clinician]),
        ] {
            let refused =
                create_account(&f.store, &hasher, &coordinator, input(institution, roles))
                    .await
                    .unwrap_err();
            assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
        }
        assert!(matches!(
            accounts(&f.store, &coordinator, Some(other)).await,
            Err(Error::Forbidden(_))
        ));
        let seen = accounts(&f.store, &coordinator, None).await.unwrap();
        assert!(seen.iter().all(|u| u.institution_id == county));
        assert_eq!(seen.len(), 2, "the coordinator and the account they made");

        // They disable that account, but not an administrator's, even of their own
        // institution, nor their own.
        let made = set_disabled(&f.store, &coordinator, made.user.id, true)
            .await
            .unwrap();
        assert!(made.disabled);
        let commission = f
            .store
            .institution(f.admin.institution_id)
            .await
            .unwrap()
            .unwrap();
        let commission_office = f.user(&commission, "coordinator", None).await;
        for (by, whom) in [(&commission_office, &f.admin), (&coordinator, &coordinator)] {
            let refused = set_disabled(&f.store, by, whom.id, true).await.unwrap_err();
            assert!(
                matches!(refused, Error::Forbidden(_) | Error::Conflict(_)),
                "{refused:?}"
            );
        }
        assert!(
            !account(&f.store, &f.admin, f.admin.id)
                .await
                .unwrap()
                .disabled
        );
    }
}
