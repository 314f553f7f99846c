//! The command line.

/// The stores the bench knows, in the order `all` runs them.
pub const STORES: [&str; 5] = ["memory", "redis", "postgres", "mysql", "sqlite"];

pub struct Args {
    pub stores: Vec<String>,
    pub json: bool,
    pub quick: bool,
    pub runs: Option<usize>,
    pub prefix: String,
    pub compare_polling: bool,
    pub compare: bool,
    /// With `--compare`: only the contenders whose name contains this (for profiling).
    pub only: Option<String>,
}

fn usage() -> &'static str {
    "usage: bench [--store memory|redis|postgres|mysql|sqlite|all]... [--json] [--quick] [--runs N] [--prefix P] [--compare-polling] [--compare [--only NAME]]"
}

/// The arguments (without the program name), or the message to print.
pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        stores: Vec::new(),
        json: false,
        quick: false,
        runs: None,
        prefix: "bench:".to_owned(),
        compare_polling: false,
        compare: false,
        only: None,
    };
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{what} needs a value\n{}", usage()))
        };
        match name.as_str() {
            "--store" | "-s" => {
                for s in value("--store")?.split(',') {
                    match s {
                        "all" => args.stores.extend(STORES.iter().map(|s| s.to_string())),
                        s if STORES.contains(&s) => args.stores.push(s.to_owned()),
                        other => return Err(format!("unknown store {other:?}\n{}", usage())),
                    }
                }
            }
            "--json" => args.json = true,
            "--quick" => args.quick = true,
            "--compare-polling" => args.compare_polling = true,
            "--compare" => args.compare = true,
            "--only" => args.only = Some(value("--only")?),
            "--runs" => {
                let n = value("--runs")?;
                args.runs = Some(
                    n.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--runs needs a positive number, not {n:?}"))?,
                );
            }
            "--prefix" => args.prefix = value("--prefix")?,
            "--help" | "-h" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if args.stores.is_empty() {
        args.stores = STORES.iter().map(|s| s.to_string()).collect();
    }
    args.stores.dedup();
    Ok(args)
}
