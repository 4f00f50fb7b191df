//! A TCP relay a test owns, to cut a network link and restore it on the same port.
//!
//! Edge tests put it between a site's leaf-node remote and the hub's leaf listener: [`Relay::cut`]
//! closes every relayed connection and stops accepting (the site sees its link drop, exactly as
//! on a WAN outage, while both servers keep running), [`Relay::restore`] listens again on the
//! same port, and the site's reconnect loop finds the hub again. Loopback only.

use std::sync::{Arc, Mutex};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

/// A cuttable relay from a loopback port to `127.0.0.1:<target>`.
pub struct Relay {
    port: u16,
    target: u16,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Relay {
    /// Starts relaying from a free loopback port to `target`.
    pub async fn start(target: u16) -> anyhow::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let relay = Relay {
            port: listener.local_addr()?.port(),
            target,
            tasks: Arc::default(),
        };
        relay.serve(listener);
        Ok(relay)
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, Arc::clone(&self.tasks));
        let accepting = async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let tasks_for_conn = Arc::clone(&tasks);
                let relay_one = async move {
                    if let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let (mut a, mut b) = (inbound, outbound);
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                };
                lock(&tasks_for_conn).spawn(relay_one);
            }
        };
        lock(&self.tasks).spawn(accepting);
    }

    /// Cuts the link: closes every relayed connection and stops listening.
    pub fn cut(&self) {
        lock(&self.tasks).abort_all();
    }

    /// Listens again on the same port.
    pub async fn restore(&self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.serve(listener);
        Ok(())
    }
}

fn lock(tasks: &Mutex<JoinSet<()>>) -> std::sync::MutexGuard<'_, JoinSet<()>> {
    tasks
        .lock()
        .expect("relay lock is never poisoned: no panics while held")
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
