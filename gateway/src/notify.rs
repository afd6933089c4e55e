//! Delivery from the outbox, at least once, in the background, retried with exponential
//! backoff: webhooks of request state changes to institutions, notices by e-mail to the
//! people who chose it (SMTP, [`lettre`]), and urgent requests to an institution's chat
//! group robot (WeCom, DingTalk or Feishu incoming webhooks). No message carries patient
//! data: what happened, the request number, and a link to the pages.
//!
//! Each webhook call is signed with
//! `X-Duikou-Signature: sha256=<hex HMAC-SHA256(secret, body)>` (the GitHub webhook
//! convention) and numbered with `X-Duikou-Delivery` so that receivers can drop repeats.
//!
//! Calls go only where the outbound policy allows (`duikou_imaging::outbound`): the
//! client resolves names through the policy and connects to the addresses it checked,
//! an address in the URL is checked before the call, and redirects are not followed (a
//! webhook answering with one has failed).

use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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

/// Minutes before a session's start at which its people are reminded.
pub const STARTING_SOON_MINUTES: i64 = 15;

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

/// The SMTP client of notices by e-mail, when the configuration names a server.
pub type Mailer = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;

/// The mailer of `config`, or `None` when no SMTP server is configured.
pub fn mailer(config: &NotifyConfig) -> Result<Option<Mailer>, String> {
    let Some(url) = &config.smtp_url else {
        return Ok(None);
    };
    let mut builder =
        Mailer::from_url(url.expose()).map_err(|e| format!("notify.smtp_url: {e}"))?;
    if let Some(ca) = &config.smtp_ca {
        builder = builder.tls(tls_with_ca(url.expose(), ca)?);
    }
    Ok(Some(
        builder
            .timeout(Some(Duration::from_secs(config.timeout_seconds)))
            .build(),
    ))
}

/// The TLS of `url` (`smtps://`, or `smtp://…?tls=required` or `opportunistic`) with
/// the certificate authority in the PEM file `ca` trusted beyond the system's.
fn tls_with_ca(url: &str, ca: &std::path::Path) -> Result<Tls, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("notify.smtp_ca {}: {e}", ca.display()))?;
    let cert =
        Certificate::from_pem(&pem).map_err(|e| format!("notify.smtp_ca {}: {e}", ca.display()))?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("notify.smtp_url: {e}"))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let params = TlsParameters::builder(host)
        .add_root_certificate(cert)
        .build()
        .map_err(|e| format!("notify.smtp_ca: {e}"))?;
    let mode = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (parsed.scheme(), mode.as_deref()) {
        ("smtps", _) => Ok(Tls::Wrapper(params)),
        ("smtp", Some("required")) => Ok(Tls::Required(params)),
        ("smtp", Some("opportunistic")) => Ok(Tls::Opportunistic(params)),
        _ => Err("notify.smtp_ca needs a TLS smtp_url: smtps://… or smtp://…?tls=required".into()),
    }
}

/// What a message says, in Chinese (the program's language), from its payload: a
/// sentence from the pages' catalogue and the link to the request.
fn words(config: &NotifyConfig, payload: &str) -> Result<(String, String), String> {
    let p: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| format!("unreadable payload: {e}"))?;
    let event = p["event"].as_str().unwrap_or_default();
    let id = p["request_id"].as_i64().unwrap_or_default();
    let kind = crate::web::message(
        "zh",
        &format!("kind.{}", p["kind"].as_str().unwrap_or("consultation")),
    );
    let sentence = crate::web::message("zh", &format!("notice.{event}"))
        .replace("{kind}", &kind)
        .replace("{id}", &id.to_string());
    let urgent = if p["urgent"].as_bool() == Some(true) {
        format!("【{}】", crate::web::message("zh", "urgency.urgent"))
    } else {
        String::new()
    };
    let link = match &config.public_url {
        Some(base) => format!("{}/requests/{id}", base.trim_end_matches('/')),
        None => format!("申请编号 #{id}"),
    };
    Ok((format!("{urgent}{sentence}"), link))
}

async fn send_email(
    mailer: Option<&Mailer>,
    config: &NotifyConfig,
    d: &PendingDelivery,
) -> Result<(), String> {
    use lettre::AsyncTransport as _;
    let mailer = mailer.ok_or("no SMTP server is configured (notify.smtp_url)")?;
    let (sentence, link) = words(config, &d.payload)?;
    let message = lettre::Message::builder()
        .from(
            config
                .smtp_from
                .parse()
                .map_err(|e| format!("notify.smtp_from: {e}"))?,
        )
        .to(d.url.parse().map_err(|e| format!("the address: {e}"))?)
        .subject(format!("对口远程医疗：{sentence}"))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(format!(
            "{sentence}\n\n请登录查看：{link}\n\n本邮件由对口远程医疗系统自动发出，不含患者信息。\n"
        ))
        .map_err(|e| format!("the message: {e}"))?;
    mailer
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {e}"))
}

/// The JSON a chat group robot of `kind` takes for `text`, and the query its URL needs,
/// signed with `secret` when one is set (DingTalk and Feishu "signature" security).
fn chat_body(
    kind: &str,
    text: &str,
    secret: &str,
    now: chrono::DateTime<Utc>,
) -> Result<(serde_json::Value, Option<String>), String> {
    use base64::Engine as _;
    let sign = |key: &[u8], message: &[u8]| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(message);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    match kind {
        "wecom" => Ok((
            serde_json::json!({"msgtype": "text", "text": {"content": text}}),
            None,
        )),
        "dingtalk" => {
            let body = serde_json::json!({"msgtype": "text", "text": {"content": text}});
            if secret.is_empty() {
                return Ok((body, None));
            }
            let ms = now.timestamp_millis();
            let signed = sign(secret.as_bytes(), format!("{ms}\n{secret}").as_bytes());
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("timestamp", &ms.to_string())
                .append_pair("sign", &signed)
                .finish();
            Ok((body, Some(query)))
        }
        "feishu" => {
            let mut body = serde_json::json!({"msg_type": "text", "content": {"text": text}});
            if !secret.is_empty() {
                let seconds = now.timestamp();
                body["timestamp"] = seconds.to_string().into();
                body["sign"] = sign(format!("{seconds}\n{secret}").as_bytes(), b"").into();
            }
            Ok((body, None))
        }
        other => Err(format!("unknown chat robot kind {other:?}")),
    }
}

async fn send_chat(
    client: &reqwest::Client,
    policy: &Policy,
    config: &NotifyConfig,
    d: &PendingDelivery,
) -> Result<(), String> {
    check_url(&d.url, policy)?;
    let (sentence, link) = words(config, &d.payload)?;
    let text = format!("对口远程医疗：{sentence}。请尽快处理：{link}");
    let kind = d.chat_kind.as_deref().unwrap_or_default();
    let (body, query) = chat_body(kind, &text, &d.secret, Utc::now())?;
    let mut url = d.url.clone();
    if let Some(query) = query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query);
    }
    let response = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    let status = response.status();
    let answer = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("the chat robot answered {status}"));
    }
    // The robots answer 200 with their own code: 0 is delivered.
    let code = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| {
            v.get("errcode")
                .or_else(|| v.get("code"))
                .and_then(|c| c.as_i64())
        });
    match code {
        None | Some(0) => Ok(()),
        Some(code) => Err(format!("the chat robot refused the message (code {code})")),
    }
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
    mailer: Option<&Mailer>,
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
        // Only while it still waits: one decided or cancelled since it was found is not
        // overdue.
        store
            .overdue_told(
                request,
                &[crate::store::PersonNotice {
                    to: crate::store::Audience::Holders {
                        institution_id: supporter,
                        roles: vec![crate::domain::Role::Coordinator, answering],
                    },
                    event: "overdue".into(),
                    request_id: request,
                    kind: kind.clone(),
                    version: 0,
                    urgent: urgency == "urgent",
                    except: None,
                }],
                &notices(request, 0, "overdue", Utc::now(), [requester, supporter]),
            )
            .await?;
    }
    // A session about to begin: the requesting doctor and the consultant are reminded
    // once for each time it is scheduled at (a new time is a new version).
    for (request, version, requester, consultant, kind, urgency) in store
        .starting_soon(TimeDelta::minutes(STARTING_SOON_MINUTES))
        .await?
    {
        let people: Vec<crate::store::Audience> =
            std::iter::once(crate::store::Audience::User(requester))
                .chain(consultant.map(crate::store::Audience::Clinician))
                .collect();
        let notices: Vec<crate::store::PersonNotice> = people
            .into_iter()
            .map(|to| crate::store::PersonNotice {
                to,
                event: "starting".into(),
                request_id: request,
                kind: kind.clone(),
                version,
                urgent: urgency == "urgent",
                except: None,
            })
            .collect();
        store.notify_people(&notices).await?;
    }
    let lease = Utc::now() + TimeDelta::seconds(config.timeout_seconds as i64 * 2 + 5);
    let mut sent = 0;
    for d in store.claim_deliveries(lease, 50).await? {
        let outcome = match d.channel.as_str() {
            "email" => send_email(mailer, config, &d).await,
            "chat" => send_chat(client, policy, config, &d).await,
            _ => send(client, policy, &d).await,
        };
        match outcome {
            Ok(()) => {
                store.mark_delivered(d.id).await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(delivery = d.id, channel = d.channel, attempts = d.attempts + 1, error = %e, "delivery failed");
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
    let mailer = match mailer(&config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "no SMTP client: notices by e-mail wait in the outbox");
            None
        }
    };
    loop {
        if let Err(e) = deliver_once(&store, &client, mailer.as_ref(), &policy, &config).await {
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
