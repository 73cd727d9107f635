//! Running out of resources (descriptors, memory, processes, threads): how
//! long to pause before trying again, and a log that says what happens
//! without drowning in it.

use std::time::{Duration, Instant};

use crate::notice;

/// How long to pause after running out of descriptors, memory or
/// processes, before trying again.
pub const BACK_OFF: Duration = Duration::from_millis(100);

/// How often a failure that goes on is summed up in the log.
const TROUBLE_REPORT: Duration = Duration::from_secs(10);

/// A failure for lack of resources that may repeat ten times a second
/// while it lasts (accept with no descriptor left, fork with no process
/// left): the first one is logged, the next ones are counted and summed
/// up at most every 10 s, and the end of the trouble is logged with the
/// count.
#[derive(Debug, Default)]
pub struct Trouble {
    since: Option<Instant>,
    reported: Option<Instant>,
    count: u64,
}

impl Trouble {
    /// Notes one more failure, described by `what` ("accept: Too many open files").
    pub fn failed(&mut self, what: &str) {
        let now = Instant::now();
        self.count += 1;
        match (self.since, self.reported) {
            (None, _) => {
                self.since = Some(now);
                self.reported = Some(now);
                notice!(
                    "{what}; pausing {} ms before each new try (repeats are counted, not logged)",
                    BACK_OFF.as_millis()
                );
            }
            (Some(since), Some(reported)) if now - reported >= TROUBLE_REPORT => {
                self.reported = Some(now);
                notice!("{what}: still failing, {} times in {} s", self.count, (now - since).as_secs());
            }
            _ => {}
        }
    }

    /// Notes that `what` ("accept", "fork") worked: logs the end of a
    /// trouble, if there was one.
    pub fn worked(&mut self, what: &str) {
        if let Some(since) = self.since.take() {
            notice!(
                "{what} works again, after {} failures in {:.1} s",
                self.count,
                since.elapsed().as_secs_f64()
            );
            self.count = 0;
            self.reported = None;
        }
    }
}
