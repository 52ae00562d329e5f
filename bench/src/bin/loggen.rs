//! `loggen KIND COUNT [SEED]`: writes COUNT realistic lines of KIND
//! (`nginx`, `apache` or `auth`) to stdout.

use std::io::Write;

use auditship_bench::{Kind, LineGen};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: loggen nginx|apache|auth COUNT [SEED]";
    let kind = match args.get(1).map(String::as_str) {
        Some("nginx") => Kind::NginxCombined,
        Some("apache") => Kind::ApacheCombined,
        Some("auth") => Kind::Auth,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let Some(count) = args.get(2).and_then(|c| c.parse::<u64>().ok()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut gen = LineGen::new(seed);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut line = String::with_capacity(512);
    for _ in 0..count {
        line.clear();
        gen.line(kind, &mut line);
        line.push('\n');
        if out.write_all(line.as_bytes()).is_err() {
            return;
        }
    }
    let _ = out.flush();
}
