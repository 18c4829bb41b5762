//! Reading a web-chat session's server-sent events, as the widget does.

use futures::StreamExt;
use serde_json::Value;

/// Opens `session`'s event stream.
pub(super) async fn open(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    session: &str,
) -> anyhow::Result<impl futures::Stream<Item = Value> + Unpin> {
    let resp = http
        .get(format!(
            "{base}/api/v1/webchat/{channel}/sessions/{session}/events"
        ))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the event stream answered {}",
        resp.status()
    );
    Ok(events(resp))
}

/// Decodes a server-sent-event response into the JSON of each event's data.
fn events(resp: reqwest::Response) -> impl futures::Stream<Item = Value> + Unpin {
    let mut buf = String::new();
    Box::pin(
        resp.bytes_stream()
            .map(move |chunk| {
                let mut out = Vec::new();
                if let Ok(bytes) = chunk {
                    buf.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(pos) = buf.find("\n\n") {
                        let block: String = buf.drain(..pos + 2).collect();
                        let data: String = block
                            .lines()
                            .filter_map(|l| l.strip_prefix("data:"))
                            .map(str::trim_start)
                            .collect();
                        if let Ok(v) = serde_json::from_str::<Value>(&data) {
                            out.push(v);
                        }
                    }
                }
                futures::stream::iter(out)
            })
            .flatten(),
    )
}
