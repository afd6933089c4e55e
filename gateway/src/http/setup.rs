//! `/setup`: the set-up checklist of administrators and coordinators, decided in
//! [`crate::registry::checklist`].

use axum::Json;
use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use crate::error::{Error, Problem};
use crate::registry::{self, SetupItem};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(setup))
}

/// What the program still lacks before a county doctor can book with their supporter:
/// each step, whether the data has it, and the page that does it. Administrators see the
/// program's, coordinators their institution's pairings in force.
#[utoipa::path(get, path = "/setup", tag = "registry",
    responses((status = 200, body = Vec<SetupItem>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn setup(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SetupItem>>, Error> {
    Ok(Json(registry::checklist(&state.store, &caller.0).await?))
}
