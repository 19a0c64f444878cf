//! `bgp-bench`: workload W1 (one peer × N IPv4 prefixes re-advertised to a monitor) through
//! BIRD, GoBGP, FRR and tern, interleaved, with a warm-up round and N repetitions; prints a
//! markdown table (median (min-max)). Needs root. See docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use interop::bench::dut::{Addressing, DutKind, GEN_AS};
use interop::bench::report::{markdown, summarise};
use interop::bench::routes::{RouteSet, RouteSpec};
use interop::bench::run::{RunLimits, run_once};
use interop::scenario::binary_exists;

#[derive(Parser, Debug)]
#[command(about = "W1: 1 peer x N IPv4 prefixes through BIRD, GoBGP, FRR and tern")]
struct Args {
    /// Daemons, in interleaving order.
    #[arg(long, value_delimiter = ',', default_value = "bird,gobgp,frr,tern")]
    duts: Vec<DutKind>,
    /// Measured repetitions per daemon (after one warm-up run each).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Distinct prefixes announced.
    #[arg(long, default_value_t = 1_000_000)]
    prefixes: usize,
    /// Prefixes per attribute set on average (1,000,000 / 250 = 4,000 sets).
    #[arg(long, default_value_t = 250)]
    prefixes_per_set: usize,
    /// Seed of the route table.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the warm-up round.
    #[arg(long)]
    no_warmup: bool,
    /// Seconds allowed for the monitor to receive every prefix.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Also write the table (markdown) here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !nix::unistd::Uid::effective().is_root() {
        bail!("bgp-bench needs root (network namespaces)");
    }
    let mut notes: BTreeMap<DutKind, String> = BTreeMap::new();
    let mut duts = Vec::new();
    for kind in &args.duts {
        match kind.binaries().into_iter().find(|b| !binary_exists(b)) {
            Some(missing) => {
                eprintln!("SKIP {kind}: {missing} not found");
                notes.insert(*kind, format!("{missing} not found"));
            }
            None => duts.push(*kind),
        }
    }
    let spec = RouteSpec {
        prefixes: args.prefixes,
        prefixes_per_set: args.prefixes_per_set,
        seed: args.seed,
        local_as: GEN_AS,
        next_hop: Addressing::default().gen_addr,
    };
    let started = Instant::now();
    let routes = Arc::new(RouteSet::generate(&spec)?);
    eprintln!(
        "table: {} prefixes, {} attribute sets, {} UPDATEs, {} bytes (built in {:.1?})",
        routes.prefixes,
        routes.attribute_sets,
        routes.updates,
        routes.wire.len(),
        started.elapsed()
    );
    let limits = RunLimits {
        converge: Duration::from_secs(args.timeout),
        ..RunLimits::default()
    };
    let mut results = Vec::new();
    let rounds = args.reps + usize::from(!args.no_warmup);
    for round in 0..rounds {
        let warmup = !args.no_warmup && round == 0;
        for kind in duts.clone() {
            let label = if warmup {
                format!("{kind}-warmup")
            } else {
                format!("{kind}-{round}")
            };
            match run_once(kind, &routes, &limits, &label) {
                Ok(r) => {
                    eprintln!(
                        "{label}: {:.2} s, peak {} MiB, settled {} MiB, {:.0} B/route, {:.2} CPU s, {} kernel routes",
                        r.seconds,
                        r.peak_rss >> 20,
                        r.settled_rss >> 20,
                        r.bytes_per_route(),
                        r.cpu_seconds,
                        r.kernel_routes
                    );
                    if !warmup {
                        results.push(r);
                    }
                }
                Err(e) => {
                    eprintln!("{label}: FAILED: {e:#}");
                    notes.insert(kind, format!("failed: {e:#}").replace('\n', " "));
                    duts.retain(|k| *k != kind);
                }
            }
        }
    }
    let table = markdown(&summarise(&results), &notes);
    let header = format!(
        "W1: {} prefixes ({} attribute sets, {} UPDATEs), seed {}, {} repetitions after {} warm-up; median (min-max)\n\n",
        routes.prefixes,
        routes.attribute_sets,
        routes.updates,
        args.seed,
        args.reps,
        if args.no_warmup { "no" } else { "one" }
    );
    print!("{header}{table}");
    if let Some(out) = args.out {
        std::fs::write(out, format!("{header}{table}"))?;
    }
    Ok(())
}
