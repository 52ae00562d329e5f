//! `auditship quickstart`: a collector and an agent on this machine, with
//! nothing else to install or run.
//!
//! It writes everything into one directory (default `./auditship-quickstart`):
//! two tokens, `collector.toml`, `agent.toml`, the collector's store, the
//! agent's queue. The collector listens on 127.0.0.1 only, over plain HTTP
//! (tokens never leave the machine). The agent tails `/var/log/auth.log`,
//! `/var/log/secure` and `/var/log/nginx/access.log` where they exist and
//! are readable; otherwise it writes demo logs of its own (an auth log and
//! an nginx access log, with a new line every couple of seconds) and tails
//! those. Once the first events are stored it prints how to query them.
//! Runs until Ctrl-C (or `--run-for`); run it again and it carries on where
//! it stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::agent::{init_logging, shutdown_on_signals};

/// Arguments of `auditship quickstart`.
#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// Directory for configs, tokens, store and queue.
    #[arg(long, default_value = "auditship-quickstart")]
    dir: PathBuf,
    /// Port for the collector on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8750)]
    port: u16,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    run_for: Option<u64>,
    /// Always tail the demo logs, even where system logs are readable.
    #[arg(long)]
    demo: bool,
}

const SYSTEM_LOGS: [(&str, &str); 3] = [
    ("auth", "/var/log/auth.log"),
    ("auth", "/var/log/secure"),
    ("nginx", "/var/log/nginx/access.log"),
];

/// Runs the quickstart.
pub fn run(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(&args.dir).context("resolving --dir")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    token_file(&dir.join("ingest.token"))?;
    token_file(&dir.join("reader.token"))?;
    token_file(&dir.join("admin.token"))?;
    let agent_id =
        auditship_agent::filter::system_hostname().unwrap_or_else(|| "quickstart".into());

    let readable: Vec<(&str, &str)> = SYSTEM_LOGS
        .iter()
        .copied()
        .filter(|(_, p)| !args.demo && std::fs::File::open(p).is_ok())
        .collect();
    let demo = readable.is_empty();
    let inputs: Vec<(&str, String)> = if demo {
        let d = dir.join("demo");
        std::fs::create_dir_all(&d)?;
        vec![
            ("auth", d.join("auth.log").display().to_string()),
            ("nginx", d.join("access.log").display().to_string()),
        ]
    } else {
        readable.iter().map(|(f, p)| (*f, p.to_string())).collect()
    };

    let collector_toml = format!(
        r#"# Written by `auditship quickstart`.
data_dir = "collector"
listen = "127.0.0.1:{port}"
insecure_plain_http = true

[[tokens]]
name = "quickstart-agent"
role = "ingest"
agents = [{agent:?}]
token_file = "ingest.token"

[[tokens]]
name = "quickstart-auditor"
role = "auditor"
token_file = "reader.token"

[[tokens]]
name = "quickstart-admin"
role = "admin"
token_file = "admin.token"
"#,
        port = args.port,
        agent = agent_id,
    );
    std::fs::write(dir.join("collector.toml"), collector_toml)?;
    let cfg = auditship_collector::config::load(&dir.join("collector.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    init_logging("info", auditship_agent::config::LogFormat::Text);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        shutdown_on_signals(shutdown.clone());
        if let Some(secs) = args.run_for {
            let s = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                s.cancel();
            });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let collector = tokio::spawn(auditship_collector::server::run(cfg, shutdown.clone(), Some(tx)));
        let addr = match rx.await {
            Ok(a) => a,
            Err(_) => {
                return match collector.await {
                    Ok(Err(e)) => Err(anyhow::anyhow!("collector: {e}")),
                    _ => Err(anyhow::anyhow!("the collector did not start")),
                }
            }
        };
        let mut agent_toml = format!(
            "# Written by `auditship quickstart`.\nstate_dir = {:?}\nagent_id = {agent_id:?}\n",
            dir.join("agent").display().to_string()
        );
        for (i, (format, path)) in inputs.iter().enumerate() {
            agent_toml.push_str(&format!(
                "\n[[inputs]]\ntype = \"file\"\nname = \"{format}-{i}\"\nformat = \"{format}\"\ninclude = [{path:?}]\n"
            ));
        }
        agent_toml.push_str(&format!(
            "\n[[outputs]]\ntype = \"collector\"\nendpoints = [\"http://{addr}\"]\ntoken_file = {:?}\nmax_wait = \"500ms\"\n",
            dir.join("ingest.token").display().to_string()
        ));
        std::fs::write(dir.join("agent.toml"), agent_toml)?;
        let agent_cfg = auditship_agent::config::load(&dir.join("agent.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
        if demo {
            let d = dir.join("demo");
            tokio::spawn(crate::commands::demo::write_demo_logs(d, shutdown.clone()));
        }
        let agent = tokio::spawn(auditship_agent::runtime::run(agent_cfg, shutdown.clone()));

        let exe = std::env::current_exe().map_or("auditship".into(), |p| p.display().to_string());
        let mut banner = String::new();
        banner.push_str(&format!("\nauditship quickstart: collector on http://{addr}, agent {agent_id:?}\n"));
        banner.push_str(&format!("  everything lives in {}\n", dir.display()));
        for (_, p) in &inputs {
            banner.push_str(&format!("  tailing {p}\n"));
        }
        if demo {
            banner.push_str("  (no readable /var/log/auth.log, /var/log/secure or nginx log here: these are demo logs it writes itself)\n");
        }
        banner.push_str(&format!(
            "\nQuery what arrived, from another terminal:\n  {exe} query --url http://{addr} --token-file {} --since 1h\n  {exe} query --url http://{addr} --token-file {} --action ssh_login --outcome failure\n\nProve nothing was altered (the collector's signed Merkle log):\n  {exe} verify --store {} --pubkey {}\n\nSee who read what (every query is recorded in the log), and manage tokens:\n  {exe} query --url http://{addr} --token-file {} --category access\n  {exe} token list --url http://{addr} --token-file {}\n\nCtrl-C stops both; run it again to carry on.\n",
            dir.join("reader.token").display(),
            dir.join("reader.token").display(),
            dir.join("collector").display(),
            dir.join("collector").join("collector.pub").display(),
            dir.join("reader.token").display(),
            dir.join("admin.token").display(),
        ));
        eprintln!("{banner}");
        let _ = std::io::stderr().flush();

        let agent_result = agent.await;
        shutdown.cancel();
        let collector_result = collector.await;
        match agent_result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(anyhow::anyhow!("agent: {e}")),
            Err(e) => return Err(anyhow::anyhow!("agent: {e}")),
        }
        match collector_result {
            Ok(Ok(())) => Ok(ExitCode::SUCCESS),
            Ok(Err(e)) => Err(anyhow::anyhow!("collector: {e}")),
            Err(e) => Err(anyhow::anyhow!("collector: {e}")),
        }
    })
}

/// Reads a token file, creating it with a fresh random token (mode 0600).
fn token_file(path: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        return Ok(t.trim_end().to_string());
    }
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{token}")?;
    Ok(token)
}
