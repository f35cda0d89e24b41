//! A `peregrine` listening for Kubernetes audit events on loopback (no
//! kernel module needed), and a client for it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One audit Event; `verb` decides whether the tests' rules match it.
pub fn audit_event(i: usize, verb: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"id-{i}","stage":"ResponseComplete",
"requestURI":"/api/v1/namespaces/default/pods","verb":"{verb}","user":{{"username":"alice","groups":["system:authenticated"]}},
"objectRef":{{"resource":"pods","namespace":"default","name":"pod-{i}","apiVersion":"v1"}},
"responseStatus":{{"code":201}},"requestReceivedTimestamp":"2026-11-25T10:00:00.000000Z","stageTimestamp":"2026-11-25T10:00:00.100000Z"}}"#
    )
}

/// The arguments that start the Kubernetes audit webhook on an ephemeral
/// loopback port; peregrine says which in its "listening" line.
pub const WEBHOOK_ON_LOOPBACK: [&str; 6] = [
    "-o",
    "k8s_audit.enabled=true",
    "-o",
    "k8s_audit.listen_address=127.0.0.1",
    "-o",
    "k8s_audit.listen_port=0",
];

/// The arguments that start the webserver on an ephemeral loopback port;
/// [`webserver_address`] finds the port in what peregrine says.
pub const WEBSERVER_ON_LOOPBACK: [&str; 6] = [
    "-o",
    "webserver.enabled=true",
    "-o",
    "webserver.listen_address=127.0.0.1",
    "-o",
    "webserver.listen_port=0",
];

/// The webserver's base URL, if `line` is peregrine saying where it listens.
pub fn webserver_address(line: &str) -> Option<String> {
    let rest = line.split("Webserver listening on ").nth(1)?;
    let address = rest.split_whitespace().next()?;
    Some(format!("http://{address}"))
}

/// The child's stderr, line by line, read on a thread of its own.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

pub struct Running {
    pub child: Child,
    /// The audit webhook's URL.
    pub url: String,
    /// The webserver's base URL, when the extra arguments enabled it.
    pub web: Option<String>,
    /// What stderr said until the webhook listened.
    pub startup: Vec<String>,
    pub stderr_lines: mpsc::Receiver<String>,
}

/// Starts peregrine with `rules`, the webhook on an ephemeral port.
pub fn start(rules: &Path) -> Running {
    start_with(rules, &[])
}

/// `start` with more arguments (e.g. `-o webserver.enabled=true`).
pub fn start_with(rules: &Path, extra: &[&str]) -> Running {
    let mut args: Vec<&str> = extra.to_vec();
    let rules = rules.display().to_string();
    args.extend(["-r", &rules]);
    start_args(&args)
}

/// Starts peregrine with these arguments and no `-r` (the rules are the
/// config's `rules_file`), the webhook on an ephemeral port.
pub fn start_args(extra: &[&str]) -> Running {
    start_args_env(extra, &[])
}

/// `start_args` with environment variables set for peregrine (e.g.
/// `FALCO_HOSTNAME`, the node name alerts carry).
pub fn start_args_env(extra: &[&str], env: &[(&str, &str)]) -> Running {
    let binary = crate::peregrine_binary().unwrap();
    let mut child = Command::new(binary)
        .envs(env.iter().copied())
        .args(extra)
        .args(["--disable-source", "syscall"])
        .args(WEBHOOK_ON_LOOPBACK)
        .args(["-o", "json_output=true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut web = None;
    let mut startup = Vec::new();
    let url = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("webhook never said it listens: {startup:#?}"));
        startup.push(line.clone());
        if let Some(address) = webserver_address(&line) {
            web = Some(address);
        }
        if let Some(rest) = line.split("webhook listening on ").nth(1) {
            break format!("http://{}", rest.trim());
        }
    };
    Running {
        child,
        url,
        web,
        startup,
        stderr_lines: rx,
    }
}

/// SIGTERM, then stdout and stderr of the whole run.
pub fn stop(mut running: Running) -> (String, String) {
    Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    let mut stdout = String::new();
    running
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = running.child.wait().unwrap();
    assert!(status.success(), "peregrine exited with {status}");
    let stderr: Vec<String> = running.stderr_lines.try_iter().collect();
    (stdout, stderr.join("\n"))
}

/// POSTs a body; the HTTP status (0 when the request failed).
pub fn post(url: &str, body: &str) -> u16 {
    ureq::post(url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("Content-Type", "application/json")
        .send(body)
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// GETs a URL: status and body (0 and empty when the request failed).
pub fn get(url: &str) -> (u16, String) {
    match ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
    {
        Ok(response) => {
            let status = response.status().as_u16();
            (
                status,
                response.into_body().read_to_string().unwrap_or_default(),
            )
        }
        Err(_) => (0, String::new()),
    }
}
