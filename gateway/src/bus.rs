//! The signaling bus between gateway processes that share a PostgreSQL database:
//! LISTEN/NOTIFY on one channel. A NOTIFY payload holds at most 8000 bytes; a larger event
//! (an SDP offer with many candidates) is stored in `signal_spill` and only its id is
//! notified. Spilled rows are deleted after a few minutes.
//!
//! Payloads are `E<json>` (the event itself) or `S<id>` (spilled). Every process also
//! receives its own events; the hub ignores them by their node name.

use std::time::Duration;

use duikou_signaling::hub::BusEvent;
use duikou_signaling::server::BusLink;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

/// The NOTIFY channel.
pub const CHANNEL: &str = "duikou_signal";
/// Larger payloads are spilled to a table.
const INLINE_MAX: usize = 7000;

/// Listens on the channel and starts the publisher; the link goes to the signaling hub.
pub async fn start(pool: PgPool) -> anyhow::Result<BusLink> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    let (outgoing, mut to_publish) = mpsc::unbounded_channel::<BusEvent>();
    let (delivered, incoming) = mpsc::unbounded_channel::<BusEvent>();

    let publisher = pool.clone();
    tokio::spawn(async move {
        while let Some(event) = to_publish.recv().await {
            if let Err(e) = publish(&publisher, &event).await {
                tracing::warn!(error = %e, "cannot publish a signaling event");
            }
        }
    });

    // The listener holds a connection of the pool for as long as it lives, and the pool
    // closes only once it has every connection back: the reader ends, and lets go of
    // it, when the hub lets go of its link or the pool closes.
    let reader = pool.clone();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                received = listener.recv() => received,
                () = delivered.closed() => return,
            };
            match received {
                Ok(n) => match decode(&reader, n.payload()).await {
                    Ok(event) => {
                        if delivered.send(event).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable signaling event"),
                },
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    // sqlx reconnects on the next recv; events sent meanwhile are lost,
                    // and heartbeats and resumes repair the rooms.
                    tracing::warn!(error = %e, "signaling bus connection lost");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });

    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        let closed = pool.close_event();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = &mut closed => return,
            }
            let pruned = sqlx::query(
                "delete from signal_spill where created_at < now() - interval '5 minutes'",
            )
            .execute(&pool)
            .await;
            if let Err(e) = pruned {
                tracing::warn!(error = %e, "cannot prune spilled signaling events");
            }
        }
    });
    Ok(BusLink { outgoing, incoming })
}

async fn publish(pool: &PgPool, event: &BusEvent) -> anyhow::Result<()> {
    let json = serde_json::to_string(event)?;
    let payload = if json.len() <= INLINE_MAX {
        format!("E{json}")
    } else {
        let id: i64 =
            sqlx::query_scalar("insert into signal_spill (payload) values ($1) returning id")
                .bind(&json)
                .fetch_one(pool)
                .await?;
        format!("S{id}")
    };
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}

async fn decode(pool: &PgPool, payload: &str) -> anyhow::Result<BusEvent> {
    if let Some(json) = payload.strip_prefix('E') {
        return Ok(serde_json::from_str(json)?);
    }
    let id: i64 = payload
        .strip_prefix('S')
        .ok_or_else(|| anyhow::anyhow!("unknown payload kind"))?
        .parse()?;
    let json: String = sqlx::query_scalar("select payload from signal_spill where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(serde_json::from_str(&json)?)
}
