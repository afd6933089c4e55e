//! The imaging relay wired to the gateway: the storage SCP answers to the AE titles
//! registered for institutions, and indexes what it stores in the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use duikou_imaging::scp::{self, Archive, Caller, Indexed, InstanceRecord, ScpConfig};
use duikou_imaging::spool::Spool;

use crate::startup::Prepared;
use crate::store::Store;

/// The index and the registry, for the SCP.
pub struct StoreArchive(pub Store);

impl Archive for StoreArchive {
    async fn callers(&self) -> Result<HashMap<String, Caller>, String> {
        let nodes = self.0.dicom_nodes(None).await.map_err(|e| e.to_string())?;
        let mut callers: HashMap<String, Caller> = HashMap::new();
        for n in nodes {
            let entry = callers.entry(n.ae_title).or_insert(Caller {
                institution_id: n.institution_id,
                hosts: Vec::new(),
            });
            entry.hosts.push(n.host);
        }
        Ok(callers)
    }

    async fn known(&self, sop_instance_uid: &str) -> Result<bool, String> {
        self.0
            .instance_known(sop_instance_uid)
            .await
            .map_err(|e| e.to_string())
    }

    async fn index(&self, record: InstanceRecord) -> Result<Indexed, String> {
        match self.0.index_instance(&record).await {
            Ok(true) => Ok(Indexed::New),
            Ok(false) => Ok(Indexed::Duplicate),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Starts the storage SCP on `listener`; the task runs until aborted.
pub fn start(
    prepared: &Prepared,
    listener: std::net::TcpListener,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let c = &prepared.config.imaging;
    let spool = Spool::open(&c.spool(&prepared.config.data.dir))?;
    let config = Arc::new(ScpConfig {
        ae_title: c.ae_title.clone(),
        max_pdu_length: c.max_pdu_length,
        max_instance_bytes: c.max_instance_bytes,
        timeout: Duration::from_secs(c.timeout_seconds),
    });
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(addr = %listener.local_addr()?, ae_title = %c.ae_title, "DICOM listening");
    let archive = Arc::new(StoreArchive(prepared.store.clone()));
    Ok(tokio::spawn(scp::serve(listener, config, spool, archive)))
}
