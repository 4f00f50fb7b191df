//! A pipe worker process for the pipeline tests: a real process the tests can `kill -9` in the
//! middle of an item. `pipe_worker URL PIPE hold` takes items and never finishes them;
//! `pipe_worker URL PIPE ack` acknowledges each. Every item taken is printed as
//! `took <seq> <deliveries> <payload>` and flushed, so the test knows when to kill.

use std::io::Write;

use plantd_shared::pipe::{Worker, WorkerOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, pipe, mode] = args.as_slice() else {
        anyhow::bail!("usage: pipe_worker NATS_URL PIPE hold|ack");
    };
    let client = async_nats::connect(url.as_str()).await?;
    let js = async_nats::jetstream::new(client);
    let mut worker = Worker::bind(&js, pipe, WorkerOptions::default()).await?;
    let mut held = Vec::new();
    while let Some(item) = worker.next().await {
        let item = item?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "took {} {} {}",
            item.seq(),
            item.deliveries(),
            String::from_utf8_lossy(item.payload())
        )?;
        out.flush()?;
        match mode.as_str() {
            "ack" => item.ack().await?,
            // Keep it unfinished until the test kills this process.
            _ => held.push(item),
        }
    }
    Ok(())
}
