//! `shmbox gc [--watch SECS]`

use std::process::ExitCode;
use std::time::Duration;

use super::Outcome;
use crate::note;

pub fn run(at: &shmbox::Location, watch: Option<Duration>) -> Outcome {
    if !at.is_local() {
        // A server's segments are reclaimed by the next access to each;
        // listing them visits them all.
        let live = shmbox::list_at(at)?.len();
        note!(
            "visited the segments at {at}: {live} live; those whose holders' leases had all run \
             out were removed"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(every) = watch else {
        report(&shmbox::reclaim()?, true);
        return Ok(ExitCode::SUCCESS);
    };
    note!(
        "reclaiming dead until-last-close segments every {:?} (stop with Ctrl-C)",
        every
    );
    loop {
        report(&shmbox::reclaim()?, false);
        std::thread::sleep(every);
    }
}

/// One line per segment removed; a summary when nothing was, unless quiet.
fn report(removed: &[shmbox::SegmentName], say_nothing_found: bool) {
    for name in removed {
        note!("removed {name}: its holders all died");
    }
    if removed.is_empty() && say_nothing_found {
        note!("nothing to reclaim: every until-last-close segment has a live holder");
    }
}
