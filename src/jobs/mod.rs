//! The background jobs of `serve`, started together and stopped together: the audit
//! sequencer and checkpoint writer, the HTTP witness (when configured), mandate expiry,
//! retention (hourly by default) and SMS delivery. Each job is a use case run on a
//! schedule; its code lives with its area (`audit/`, `service/`, `sms/`), this module only
//! starts and joins them.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::Services;

/// The running jobs; [`Jobs::join`] waits for all of them once `stop` turned `true`.
pub struct Jobs(Vec<JoinHandle<()>>);

/// Starts every background job on `services`; they stop when `stop` turns `true`.
pub fn start(services: &Services, stop: &watch::Receiver<bool>) -> Jobs {
    let s = services;
    let mut handles = vec![
        tokio::spawn(s.sequencer.clone().run(stop.clone())),
        tokio::spawn(s.checkpoints.clone().run(stop.clone())),
        tokio::spawn(crate::service::lifecycle::run_expiry(
            s.clone(),
            stop.clone(),
        )),
        tokio::spawn(crate::service::retention::run_scheduled(
            s.clone(),
            crate::service::retention::Schedule::every(s.config.retention_interval),
            stop.clone(),
        )),
        tokio::spawn(crate::sms::delivery::run(s.clone(), stop.clone())),
    ];
    if let Some(w) = s.checkpoints.http_witness().cloned() {
        handles.push(tokio::spawn(w.run(stop.clone())));
    }
    Jobs(handles)
}

impl Jobs {
    pub async fn join(self) {
        for h in self.0 {
            let _ = h.await;
        }
    }
}
