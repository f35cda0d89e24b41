//! `peregrine fleet`: the other end of `nats_output`. Reads the alerts of
//! every node from the JetStream stream as a durable consumer (so a
//! restarted `fleet` goes on where it stopped) and shows, per node, how
//! many alerts and drop reports came, and when it was last heard of, so an
//! operator sees which node went quiet.

mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer};
use async_nats::{ConnectOptions, ServerAddr};
use tokio_stream::StreamExt;

use crate::args::FleetArgs;
use crate::outputs::nats::NatsAuth;
pub use view::{FleetView, LatencyWindow, NodeView};

pub fn run(args: &FleetArgs, stop: &Arc<AtomicBool>) -> Result<FleetView, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("fleet: cannot start the runtime: {e}"))?;
    runtime.block_on(consume(args, stop))
}

async fn consume(args: &FleetArgs, stop: &Arc<AtomicBool>) -> Result<FleetView, String> {
    let servers = args
        .servers
        .iter()
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| format!("--server '{s}': {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let auth = NatsAuth {
        credentials: args.creds.clone(),
        token: args.token.clone(),
        user: args.user.clone(),
        password: args.password.clone(),
        tls_ca: args.tls_ca.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
    };
    let connect = auth
        .apply(ConnectOptions::new().name("peregrine-fleet"))
        .await?;
    let client = connect
        .connect(servers)
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))?;
    let context = jetstream::new(client);
    let stream = context
        .get_stream(&args.stream)
        .await
        .map_err(|e| format!("stream {}: {e}", args.stream))?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &args.durable,
            consumer::pull::Config {
                durable_name: Some(args.durable.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                filter_subject: args.subject.clone().unwrap_or_default(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("durable consumer {}: {e}", args.durable))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("durable consumer {}: {e}", args.durable))?;

    let quiet_after = Duration::from_secs(args.quiet_after);
    let every = Duration::from_secs(args.every.max(1));
    let idle_exit = args.idle_exit.map(Duration::from_secs);
    let mut view = FleetView::default();
    let mut last_message = Instant::now();
    let mut last_table = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(500), messages.next()).await {
            Ok(Some(Ok(message))) => {
                last_message = Instant::now();
                let id = message
                    .headers
                    .as_ref()
                    // The client files the headers it knows under their
                    // standard names: looked up by string, this one is
                    // never found.
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_string());
                view.take(id.as_deref(), &message.payload, SystemTime::now());
                if args.alerts {
                    println!("{}", String::from_utf8_lossy(&message.payload));
                }
                message
                    .ack()
                    .await
                    .map_err(|e| format!("cannot acknowledge a message: {e}"))?;
            }
            Ok(Some(Err(e))) => crate::log::message(&format!("fleet: {e}")),
            Ok(None) => break,
            Err(_) => {}
        }
        if !args.json && last_table.elapsed() >= every {
            print!("{}", view.table(SystemTime::now(), quiet_after));
            last_table = Instant::now();
        }
        if idle_exit.is_some_and(|idle| last_message.elapsed() >= idle) {
            break;
        }
    }
    let now = SystemTime::now();
    if args.json {
        println!("{}", view.summary(now, quiet_after));
    } else {
        print!("{}", view.table(now, quiet_after));
        println!(
            "{} messages, {} distinct alerts, {} duplicates",
            view.messages,
            view.unique(),
            view.duplicates
        );
    }
    Ok(view)
}
