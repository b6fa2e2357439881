//! Graceful shutdown: one token that every task watches.
//!
//! The binary creates a [`Shutdown`], passes it to the app, and calls
//! [`Shutdown::listen_for_signals`]. The first SIGINT/SIGTERM cancels the
//! token (tasks drain and exit); a second one exits the process at once.

use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts shutdown (idempotent).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has started.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawns a task that triggers shutdown on the first SIGINT/SIGTERM and
    /// exits the process with status 130 on the second.
    pub fn listen_for_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received, draining");
            this.trigger();
            wait_for_signal().await;
            tracing::warn!("second shutdown signal received, exiting now");
            std::process::exit(130);
        });
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM, only SIGINT stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
