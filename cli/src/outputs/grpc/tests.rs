//! The gRPC output against a real tonic client, on a unix socket and on
//! TCP with mutual TLS.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel as GrpcConnection, ClientTlsConfig, Endpoint};

use super::proto::falco::outputs::service_client::ServiceClient;
use super::proto::falco::outputs::{Request as OutputsRequest, Response as OutputsResponse};
use super::proto::falco::schema;
use super::*;
use crate::alert::{render, Alert};

fn alert(rule: &str, priority: Priority, source: &str) -> Alert {
    Alert {
        time_ns: 1_470_327_477_881_781_397,
        rule: rule.into(),
        priority,
        source: source.into(),
        tags: vec!["filesystem".into(), "process".into()],
        hostname: "box".into(),
        output: "An open was seen (command=cat /dev/null)".into(),
        output_fields: vec![
            ("proc.cmdline".into(), Some("cat /dev/null".into())),
            ("user.name".into(), None),
        ],
    }
}

fn render_options(json_output: bool) -> RenderOptions {
    RenderOptions {
        json_output,
        time_format_iso_8601: true,
        ..RenderOptions::default()
    }
}

fn shared(alert: Alert, json_output: bool) -> SharedAlert {
    Arc::new(render(alert, &render_options(json_output)))
}

fn options(bind_address: String, backlog: usize, json_output: bool) -> GrpcOptions {
    GrpcOptions {
        bind_address,
        threadiness: 1,
        private_key: None,
        cert_chain: None,
        root_certs: None,
        backlog,
        render: render_options(json_output),
    }
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect_unix(path: &Path) -> ServiceClient<GrpcConnection> {
    let path = path.to_path_buf();
    // The URI is required by the API and not used: the connector dials.
    let connection = Endpoint::try_from("http://[::1]:1")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap();
    ServiceClient::new(connection)
}

async fn get_all(client: &mut ServiceClient<GrpcConnection>) -> Vec<OutputsResponse> {
    let mut stream = client.get(OutputsRequest {}).await.unwrap().into_inner();
    let mut responses = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        responses.push(response);
    }
    responses
}

#[test]
fn get_returns_what_was_queued_since_the_last_get_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nested/peregrine.sock");
    let mut channel =
        GrpcChannel::start(options(format!("unix://{}", socket.display()), 100, false)).unwrap();
    assert!(socket.exists(), "the socket's folder is made");
    channel
        .emit(&shared(
            alert("open_from_cat", Priority::Warning, "syscall"),
            false,
        ))
        .unwrap();
    channel
        .emit(&shared(
            alert("audit", Priority::Critical, "k8s_audit"),
            false,
        ))
        .unwrap();

    let runtime = client_runtime();
    let (first, second) = runtime.block_on(async {
        let mut client = connect_unix(&socket).await;
        let first = get_all(&mut client).await;
        let second = get_all(&mut client).await;
        (first, second)
    });
    assert_eq!(first.len(), 2);
    assert!(second.is_empty(), "a get takes what it returns: {second:?}");

    let one = &first[0];
    let time = one.time.unwrap();
    assert_eq!((time.seconds, time.nanos), (1_470_327_477, 881_781_397));
    assert_eq!(one.priority, schema::Priority::Warning as i32);
    assert_eq!(one.priority, 4, "Falco's wire number for warning");
    assert_eq!(one.source, schema::Source::Syscall as i32);
    assert_eq!(one.source_name, "syscall");
    assert_eq!(one.rule, "open_from_cat");
    assert_eq!(
        one.output,
        "2016-08-04T16:17:57.881781397+0000: Warning An open was seen (command=cat /dev/null)"
    );
    assert_eq!(one.output_fields["proc.cmdline"], "cat /dev/null");
    assert_eq!(one.output_fields["user.name"], "<NA>");
    assert_eq!(
        one.output_fields["evt.time.iso8601"], "2016-08-04T16:17:57.881781397+0000",
        "the line's time is an output field, as in Falco"
    );
    assert_eq!(one.output_fields.len(), 3);
    assert_eq!(one.hostname, "box");
    assert_eq!(one.tags, ["filesystem", "process"]);

    let two = &first[1];
    assert_eq!(two.priority, 2);
    assert_eq!(two.source, 1, "k8s_audit is 1 on the wire");
    assert_eq!(two.rule, "audit");
    channel.close().unwrap();
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

#[test]
fn sub_streams_alerts_as_they_come_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let mut channel =
        GrpcChannel::start(options(format!("unix://{}", socket.display()), 100, true)).unwrap();
    // Queued before anyone subscribed: `sub` starts from now, `get` has it.
    channel
        .emit(&shared(alert("before", Priority::Notice, "syscall"), true))
        .unwrap();
    let runtime = client_runtime();
    let mut client = runtime.block_on(connect_unix(&socket));
    let mut stream = runtime.block_on(async {
        let requests = tokio_stream::iter(vec![OutputsRequest {}]);
        client.sub(requests).await.unwrap().into_inner()
    });
    // The subscription is registered once the call is answered.
    for i in 0..3 {
        channel
            .emit(&shared(
                alert(&format!("live {i}"), Priority::Error, "syscall"),
                true,
            ))
            .unwrap();
    }
    let received = runtime.block_on(async {
        let mut rules = Vec::new();
        for _ in 0..3 {
            let response = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("sub delivers without a new request")
                .unwrap()
                .unwrap();
            // json_output is on; the output field is still the text line.
            assert!(
                response
                    .output
                    .ends_with(": Error An open was seen (command=cat /dev/null)"),
                "{}",
                response.output
            );
            rules.push(response.rule);
        }
        rules
    });
    assert_eq!(received, ["live 0", "live 1", "live 2"]);
    let got: Vec<String> = runtime
        .block_on(get_all(&mut client))
        .into_iter()
        .map(|r| r.rule)
        .collect();
    assert_eq!(got, ["before", "live 0", "live 1", "live 2"]);

    // Shutting down ends the subscription instead of leaving it hanging.
    std::thread::scope(|scope| {
        scope.spawn(|| channel.close().unwrap());
        let end = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), stream.message()).await
        });
        assert!(
            matches!(end, Ok(Ok(None)) | Ok(Err(_))),
            "the stream ends at shutdown: {end:?}"
        );
    });
}

#[test]
fn a_full_backlog_drops_the_oldest_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("b.sock");
    let mut channel =
        GrpcChannel::start(options(format!("unix://{}", socket.display()), 2, false)).unwrap();
    for rule in ["a", "b"] {
        channel
            .emit(&shared(alert(rule, Priority::Debug, "syscall"), false))
            .unwrap();
    }
    let error = channel
        .emit(&shared(alert("c", Priority::Debug, "syscall"), false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("1 alert(s)"), "{error}");
    let runtime = client_runtime();
    let rules: Vec<String> = runtime.block_on(async {
        let mut client = connect_unix(&socket).await;
        get_all(&mut client)
            .await
            .into_iter()
            .map(|r| r.rule)
            .collect()
    });
    assert_eq!(rules, ["b", "c"]);
    channel.close().unwrap();
}

#[test]
fn shutdown_waits_briefly_for_a_get_and_reports_what_nobody_collected() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("g.sock");
    let mut channel =
        GrpcChannel::start(options(format!("unix://{}", socket.display()), 10, false)).unwrap();
    channel
        .emit(&shared(alert("late", Priority::Alert, "syscall"), false))
        .unwrap();
    let poller_socket = socket.clone();
    // A client that calls `get` only after the run ended still gets it.
    let poller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        client_runtime().block_on(async {
            let mut client = connect_unix(&poller_socket).await;
            get_all(&mut client).await
        })
    });
    channel.close().unwrap();
    let collected = poller.join().unwrap();
    assert_eq!(collected.len(), 1);
    assert_eq!(collected[0].rule, "late");

    // Nobody comes: the grace ends and the loss is reported.
    let mut channel =
        GrpcChannel::start(options(format!("unix://{}", socket.display()), 10, false)).unwrap();
    channel
        .emit(&shared(alert("lost", Priority::Alert, "syscall"), false))
        .unwrap();
    let started = std::time::Instant::now();
    let error = channel.close().unwrap_err().to_string();
    assert!(started.elapsed() >= SHUTDOWN_GRACE);
    assert!(error.contains("1 alert(s) were never collected"), "{error}");
}

#[test]
fn reconfigure_moves_the_server_and_keeps_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let unix = |path: &Path| format!("unix://{}", path.display());
    let mut channel = GrpcChannel::start(options(unix(&first), 10, false)).unwrap();
    let runtime = client_runtime();
    let mut subscription = runtime.block_on(async {
        connect_unix(&first)
            .await
            .sub(tokio_stream::iter(vec![OutputsRequest {}]))
            .await
            .unwrap()
            .into_inner()
    });
    channel
        .emit(&shared(
            alert("before", Priority::Warning, "syscall"),
            false,
        ))
        .unwrap();

    // Rendering alone: the server is left alone, the stream stays.
    let mut json = options(unix(&first), 10, true);
    assert_eq!(channel.reconfigure(json.clone()), Ok(None));
    let live = runtime.block_on(subscription.message()).unwrap().unwrap();
    assert_eq!(live.rule, "before");

    // A new address: the new socket serves, the old is gone, `sub`
    // streams end, and what no `get` collected is still there.
    json.bind_address = unix(&second);
    let line = channel.reconfigure(json.clone()).unwrap().unwrap();
    assert!(line.contains("b.sock"), "{line}");
    assert!(second.exists() && !first.exists());
    let end = runtime.block_on(subscription.message());
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    channel
        .emit(&shared(alert("after", Priority::Warning, "syscall"), true))
        .unwrap();
    let mut client = runtime.block_on(connect_unix(&second));
    let got = runtime.block_on(get_all(&mut client));
    let rules: Vec<&str> = got.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(rules, ["before", "after"]);
    assert!(
        !got[1].output.starts_with('{'),
        "json_output lines are rendered as text again: {}",
        got[1].output
    );

    // The same address with other settings: restarted in place.
    let mut more_threads = json.clone();
    more_threads.threadiness = 2;
    assert!(channel.reconfigure(more_threads.clone()).unwrap().is_some());
    assert!(second.exists());

    // An address that cannot be bound: the running server stays.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let mut bad = more_threads.clone();
    bad.bind_address = format!("unix://{}/sock", file.display());
    let error = channel.reconfigure(bad).unwrap_err();
    assert!(error.contains("keeps its previous settings"), "{error}");
    let mut client = runtime.block_on(connect_unix(&second));
    assert!(runtime.block_on(get_all(&mut client)).is_empty());
    channel.close().unwrap();
    assert!(!second.exists());
}

#[test]
fn a_socket_path_that_cannot_be_made_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let address = format!("unix://{}/sock", file.display());
    let error = GrpcChannel::start(options(address.clone(), 10, false))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains(&address), "{error}");
}

/// A CA, a server certificate for localhost and a client certificate, made
/// with the openssl command.
fn make_certificates(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ext = dir.join("san.ext");
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]) && ["server", "client"].iter().all(|name| {
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]) && run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            &format!("{name}.crt"),
        ])
    })
}

#[test]
fn tcp_serves_mutual_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    if !make_certificates(dir.path()) {
        eprintln!("skipped: the openssl command is missing or failed");
        return;
    }
    let file = |name: &str| dir.path().join(name);
    let error = GrpcChannel::start(options("127.0.0.1:0".into(), 10, false))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("mutual TLS"), "{error}");

    let mut tls_options = options("127.0.0.1:0".into(), 10, false);
    tls_options.private_key = Some(file("server.key"));
    tls_options.cert_chain = Some(file("server.crt"));
    tls_options.root_certs = Some(file("ca.crt"));
    let mut channel = GrpcChannel::start(tls_options).unwrap();
    let port = channel.address.rsplit(':').next().unwrap().to_string();
    channel
        .emit(&shared(
            alert("over tls", Priority::Warning, "syscall"),
            false,
        ))
        .unwrap();
    let read = |name: &str| std::fs::read(file(name)).unwrap();
    let ca = Certificate::from_pem(read("ca.crt"));
    let runtime = client_runtime();
    let url = format!("https://localhost:{port}");

    // Without a client certificate the handshake or the call fails.
    let refused = runtime.block_on(async {
        let endpoint = Endpoint::from_shared(url.clone())
            .unwrap()
            .tls_config(ClientTlsConfig::new().ca_certificate(ca.clone()))
            .unwrap();
        match endpoint.connect().await {
            Err(_) => true,
            Ok(connection) => ServiceClient::new(connection)
                .get(OutputsRequest {})
                .await
                .is_err(),
        }
    });
    assert!(refused, "a client without a certificate is refused");

    let rules: Vec<String> = runtime.block_on(async {
        let endpoint = Endpoint::from_shared(url.clone())
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(ca.clone())
                    .identity(Identity::from_pem(read("client.crt"), read("client.key"))),
            )
            .unwrap();
        let mut client = ServiceClient::new(endpoint.connect().await.unwrap());
        get_all(&mut client)
            .await
            .into_iter()
            .map(|r| r.rule)
            .collect()
    });
    assert_eq!(rules, ["over tls"]);
    channel.close().unwrap();
}
