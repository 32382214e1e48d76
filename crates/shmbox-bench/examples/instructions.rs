//! Runs one uncontended scenario `n` times, for instruction counting:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions shmbox 100000
//! ```
//!
//! Run it twice with different `n`; the difference in instructions over the
//! difference in `n` is the cost of one operation, free of set-up costs.

use shmbox_bench::uncontended;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(which), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: instructions SCENARIO N   (SCENARIO: a prefix of a scenario's name)");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("N is a count");
    let mut scenarios = uncontended::all().expect("set up the scenarios");
    let Some(scenario) = scenarios.iter_mut().find(|s| s.name().starts_with(&which)) else {
        let names: Vec<_> = scenarios.iter().map(|s| s.name()).collect();
        eprintln!("no scenario starts with {which:?}; there are {names:?}");
        std::process::exit(2);
    };
    scenario.run(n);
}
