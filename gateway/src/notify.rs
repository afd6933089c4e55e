//! Webhook delivery of request state changes from the outbox: at least once, in the
//! background, retried with exponential backoff, each call signed with
//! `X-Duikou-Signature: sha256=<hex HMAC-SHA256(secret, body)>` (the GitHub webhook
//! convention) and numbered with `X-Duikou-Delivery` so that receivers can drop repeats.
//!
//! Calls go only where the outbound policy allows (`duikou_imaging::outbound`): the
//! client resolves names through the policy and connects to the addresses it checked,
//! an address in the URL is checked before the call, and redirects are not followed (a
//! webhook answering with one has failed).

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::booking::notices;
use crate::config::NotifyConfig;
use crate::store::{PendingDelivery, Store};
use duikou_imaging::outbound::Policy;

/// Name resolution through the outbound policy: only the addresses it allows.
struct Checked(Policy);

impl reqwest::dns::Resolve for Checked {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let found = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of webhook calls: names resolved through `policy`, no redirects.
pub fn client(config: &NotifyConfig, policy: Policy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_seconds))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself, past the policy.
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(Checked(policy)))
        .build()
}

/// Whether `url` is one webhook calls may go to: http or https, with a host that the
/// policy allows if it is an address (a name is checked when it is resolved).
pub fn check_url(url: &str, policy: &Policy) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("an http:// or https:// URL".into());
    }
    let host = parsed.host_str().ok_or("a URL with a host")?;
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => policy.check(ip).map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    }
}

/// The signature header's value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempts + 1`.
fn backoff(config: &NotifyConfig, attempts: i32) -> TimeDelta {
    let factor = 1_u64
        .checked_shl(attempts.clamp(0, 30) as u32)
        .unwrap_or(u64::MAX);
    let ms = config
        .retry_base_ms
        .saturating_mul(factor)
        .min(config.retry_max_seconds * 1000);
    TimeDelta::milliseconds(ms as i64)
}

async fn send(
    client: &reqwest::Client,
    policy: &Policy,
    d: &PendingDelivery,
) -> Result<(), String> {
    check_url(&d.url, policy)?;
    let response = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-duikou-event", &d.event)
        .header("x-duikou-delivery", d.id.to_string())
        .header(
            "x-duikou-signature",
            signature(&d.secret, d.payload.as_bytes()),
        )
        .body(d.payload.clone())
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    if response.status().is_success() {
        Ok(())
    } else if response.status().is_redirection() {
        Err(format!(
            "the webhook answered {} (a redirect, which is not followed)",
            response.status()
        ))
    } else {
        Err(format!("the webhook answered {}", response.status()))
    }
}

/// One pass: expires requests whose window passed, queues overdue notices, then sends
/// what is due. Returns how many were sent.
pub async fn deliver_once(
    store: &Store,
    client: &reqwest::Client,
    policy: &Policy,
    config: &NotifyConfig,
) -> anyhow::Result<usize> {
    crate::booking::expire_due(store)
        .await
        .map_err(|e| anyhow::anyhow!("expiring requests: {e}"))?;
    for (request, requester, supporter, kind, urgency) in store.overdue_requests().await? {
        // The supporting institution's coordinators and those who answer such requests
        // are told once that the time to decide has passed.
        let answering = kind
            .parse()
            .map(crate::booking::answering_role)
            .unwrap_or(crate::domain::Role::Clinician);
        store
            .notify_people(&[crate::store::PersonNotice {
                to: crate::store::Audience::Holders {
                    institution_id: supporter,
                    roles: vec![crate::domain::Role::Coordinator, answering],
                },
                event: "overdue".into(),
                request_id: request,
                version: 0,
                urgent: urgency == "urgent",
                except: None,
            }])
            .await?;
        store
            .enqueue(&notices(
                request,
                0,
                "overdue",
                Utc::now(),
                [requester, supporter],
            ))
            .await?;
    }
    let lease = Utc::now() + TimeDelta::seconds(config.timeout_seconds as i64 * 2 + 5);
    let mut sent = 0;
    for d in store.claim_deliveries(lease, 50).await? {
        match send(client, policy, &d).await {
            Ok(()) => {
                store.mark_delivered(d.id).await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(delivery = d.id, attempts = d.attempts + 1, error = %e, "webhook delivery failed");
                store
                    .mark_failed(d.id, &e, Utc::now() + backoff(config, d.attempts))
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// Delivers until `stop` resolves.
pub async fn run(
    store: Store,
    config: NotifyConfig,
    policy: Policy,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match client(&config, policy.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for webhooks");
            return;
        }
    };
    loop {
        if let Err(e) = deliver_once(&store, &client, &policy, &config).await {
            tracing::warn!(error = %format!("{e:#}"), "webhook pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(config.interval_ms)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_up_to_the_limit() {
        let c = NotifyConfig {
            retry_base_ms: 1000,
            retry_max_seconds: 60,
            ..Default::default()
        };
        assert_eq!(backoff(&c, 0), TimeDelta::seconds(1));
        assert_eq!(backoff(&c, 3), TimeDelta::seconds(8));
        assert_eq!(backoff(&c, 40), TimeDelta::seconds(60));
    }
}
