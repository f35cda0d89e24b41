//! A client of Peregrine's gRPC output (Falco's `falco.outputs.service`),
//! generated from cli/proto/ by build.rs, and the protobuf text format
//! grpcurl prints, which Falco's regression cases match against.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

pub mod proto {
    pub mod falco {
        pub mod schema {
            tonic::include_proto!("falco.schema");
        }
        pub mod outputs {
            #![allow(non_camel_case_types)]
            tonic::include_proto!("falco.outputs");
        }
    }
}

pub use proto::falco::outputs::service_client::ServiceClient;
pub use proto::falco::outputs::{Request, Response};
use proto::falco::schema;

/// The service the client speaks, as a regression case names it.
pub const SERVICE: &str = "falco.outputs.service";

/// A runtime for one client thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test client")
}

/// Connects to a server on a unix socket.
pub async fn connect_unix(path: &Path) -> Result<ServiceClient<Channel>, String> {
    let path = path.to_path_buf();
    // The URI is required and unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://[::1]:1")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    Ok(ServiceClient::new(channel))
}

/// Calls `get` and reads the stream to its end.
pub async fn get(client: &mut ServiceClient<Channel>) -> Result<Vec<Response>, String> {
    let mut stream = client
        .get(Request {})
        .await
        .map_err(|e| format!("get: {e}"))?
        .into_inner();
    let mut responses = Vec::new();
    while let Some(response) = stream.message().await.map_err(|e| format!("get: {e}"))? {
        responses.push(response);
    }
    Ok(responses)
}

/// Which call a [`Collector`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Calls `get` again and again.
    Get,
    /// Holds one `sub` stream open.
    Sub,
}

impl Method {
    pub fn parse(name: &str) -> Option<Method> {
        match name {
            "get" => Some(Method::Get),
            "sub" => Some(Method::Sub),
            _ => None,
        }
    }
}

/// Collects the alerts a server sends while a process runs, from a thread
/// of its own: it waits for the socket, then polls `get` every 50 ms or
/// holds a `sub` stream, until told to finish.
pub struct Collector {
    finish: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<Response>, String>>,
}

impl Collector {
    pub fn start(socket: PathBuf, method: Method) -> Collector {
        let finish = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finish);
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                match method {
                    Method::Get => poll_get(&socket, &flag).await,
                    Method::Sub => hold_sub(&socket, &flag).await,
                }
            })
        });
        Collector { finish, thread }
    }

    /// Stops collecting (the process is gone) and returns what came.
    pub fn finish(self) -> Result<Vec<Response>, String> {
        self.finish.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| "the gRPC collector panicked".to_string())?
    }
}

async fn poll_get(socket: &Path, finish: &AtomicBool) -> Result<Vec<Response>, String> {
    let mut responses = Vec::new();
    let mut connected = false;
    loop {
        // Read before the call: a last call after the process ended finds
        // nothing, one before it may find the last alerts.
        let finishing = finish.load(Ordering::Relaxed);
        if let Ok(mut client) = connect_unix(socket).await {
            if let Ok(more) = get(&mut client).await {
                connected = true;
                responses.extend(more);
            }
        }
        if finishing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if connected {
        Ok(responses)
    } else {
        Err(format!("no gRPC server answered on {}", socket.display()))
    }
}

async fn hold_sub(socket: &Path, finish: &AtomicBool) -> Result<Vec<Response>, String> {
    let mut client = loop {
        if let Ok(client) = connect_unix(socket).await {
            break client;
        }
        if finish.load(Ordering::Relaxed) {
            return Err(format!("no gRPC server answered on {}", socket.display()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stream = client
        .sub(tokio_stream::iter(vec![Request {}]))
        .await
        .map_err(|e| format!("sub: {e}"))?
        .into_inner();
    let mut responses = Vec::new();
    let mut finish_seen: Option<Instant> = None;
    loop {
        match tokio::time::timeout(Duration::from_millis(100), stream.message()).await {
            Ok(Ok(Some(response))) => responses.push(response),
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => {}
        }
        if finish.load(Ordering::Relaxed) {
            // The server ends the stream when it stops; give it time to.
            let since = *finish_seen.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
    }
    Ok(responses)
}

/// One response in protobuf text format as grpcurl prints it: a field per
/// line, enums by name, strings quoted; the timestamp on one line and map
/// entries (sorted by key) as nested blocks.
pub fn text_format(response: &Response) -> String {
    let mut text = String::new();
    if let Some(time) = &response.time {
        let _ = writeln!(
            text,
            "time:<seconds:{} nanos:{} >",
            time.seconds, time.nanos
        );
    }
    let priority = schema::Priority::try_from(response.priority)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| response.priority.to_string());
    let _ = writeln!(text, "priority: {priority}");
    let source = schema::Source::try_from(response.source)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| response.source.to_string());
    let _ = writeln!(text, "source: {source}");
    let _ = writeln!(text, "rule: {}", quote(&response.rule));
    let _ = writeln!(text, "output: {}", quote(&response.output));
    let mut fields: Vec<_> = response.output_fields.iter().collect();
    fields.sort();
    for (key, value) in fields {
        let _ = writeln!(
            text,
            "output_fields: <\n  key: {}\n  value: {}\n>",
            quote(key),
            quote(value)
        );
    }
    let _ = writeln!(text, "hostname: {}", quote(&response.hostname));
    for tag in &response.tags {
        let _ = writeln!(text, "tags: {}", quote(tag));
    }
    let _ = writeln!(text, "source_name: {}", quote(&response.source_name));
    text
}

/// A string as the text format writes it: C escapes, other bytes in octal.
fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for byte in value.bytes() {
        match byte {
            b'"' => quoted.push_str("\\\""),
            b'\\' => quoted.push_str("\\\\"),
            b'\n' => quoted.push_str("\\n"),
            b'\r' => quoted.push_str("\\r"),
            b'\t' => quoted.push_str("\\t"),
            0x20..=0x7e => quoted.push(byte as char),
            other => {
                let _ = write!(quoted, "\\{other:03o}");
            }
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_matches_grpcurl_lines() {
        let response = Response {
            time: Some(prost_types::Timestamp {
                seconds: 1_470_327_477,
                nanos: 881_781_397,
            }),
            priority: 4,
            source: 1,
            rule: "open_from_cat".into(),
            output: "say \"hi\"\n".into(),
            output_fields: [("b".to_string(), "2".to_string()), ("a".into(), "é".into())]
                .into_iter()
                .collect(),
            hostname: "h".into(),
            tags: vec!["x".into(), "y".into()],
            source_name: "k8s_audit".into(),
        };
        let text = text_format(&response);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            text.contains("seconds:1470327477 nanos:881781397"),
            "{text}"
        );
        assert!(lines.contains(&"priority: WARNING"));
        assert!(lines.contains(&"source: K8S_AUDIT"));
        assert!(lines.contains(&"output: \"say \\\"hi\\\"\\n\""));
        let a = lines.iter().position(|l| *l == "  key: \"a\"").unwrap();
        let b = lines.iter().position(|l| *l == "  key: \"b\"").unwrap();
        assert!(a < b, "map keys are sorted");
        assert_eq!(lines[a + 1], "  value: \"\\303\\251\"");
        assert!(lines.contains(&"tags: \"y\""));
    }
}
