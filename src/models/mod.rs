//! The server models, side by side, in one table ([`MODELS`]), with the
//! options that only some of them take. `--mode`, its help, the check of
//! the options, the limits, the benchmark and the tests read it.
//!
//! | model | who serves a client ([`ServedBy`]) | module |
//! |---|---|---|
//! | `fork` | a child forked for it (the lab's server, the default) | [`crate::server::fork`] |
//! | `iterative` | the server itself, one client at a time | [`iterative`] |
//! | `prefork` | one of N children forked at start, each accepting | [`prefork`] |
//! | `thread` | a thread started for it | [`thread`] |
//! | `poll` | the server itself, all clients at once, with poll(2) | [`poll`](mod@poll) |
//!
//! They keep the same contract: the first log line says where they listen,
//! SIGTERM, SIGINT or SIGHUP stops them gracefully within `--grace`
//! seconds and prints `shutdown: accepted=A reaped=R sigpipe=S cut=C killed=K`,
//! SIGUSR1 prints a status line, and a client's service ends as one of
//! the [`Ending`](crate::server::echo::Ending)s. They are built from the
//! lab's server's parts ([`crate::server`]): accepting, the limit, the
//! status line and the back-off in [`Acceptor`](crate::server::accept::Acceptor),
//! the service of one client in a blocking model in
//! [`Echoer`](crate::server::echo::Echoer), a parent's children in
//! [`Children`](crate::server::reaper::Children).
//!
//! To add a model: write its module (`pub fn run(config: &Config) ->
//! Result<Summary>`, built from those parts), declare it below with
//! `pub mod`, and give it an entry in [`MODELS`], saying who serves its
//! clients and which of [`MODEL_OPTIONS`] it takes. Nothing else changes:
//! `--mode`, its help, the options check, the limits, the benchmark and
//! the tests all read the table.

pub mod iterative;
pub mod poll;
pub mod prefork;
pub mod thread;

use crate::server::config::{Model, ServedBy};
use crate::server::fork;
use crate::support::signals::SigpipeMode;

/// Every model, the default (the lab's fork server) first.
pub static MODELS: [Model; 5] = [
    Model {
        name: "fork",
        about: "a child process per client (the lab's server)",
        run: fork::run,
        served_by: ServedBy::Processes { in_advance: false },
        sigpipe: SigpipeMode::Default,
        options: &["max-children", "no-reaper", "splice", "leak-asock", "leak-msock"],
    },
    Model {
        name: "iterative",
        about: "one client at a time, by the server itself (the previous lab's server)",
        run: iterative::run,
        served_by: ServedBy::Server { all_at_once: false },
        sigpipe: SigpipeMode::Ignore,
        options: &["splice"],
    },
    Model {
        name: "prefork",
        about: "N children started in advance, each accepting clients one after another",
        run: prefork::run,
        served_by: ServedBy::Processes { in_advance: true },
        sigpipe: SigpipeMode::Ignore,
        options: &["workers", "max-children", "no-reaper", "splice"],
    },
    Model {
        name: "thread",
        about: "a thread per client",
        run: thread::run,
        served_by: ServedBy::Threads,
        sigpipe: SigpipeMode::Ignore,
        options: &["max-children", "no-join", "splice"],
    },
    Model {
        name: "poll",
        about: "one process, one thread, every client at once with poll(2)",
        run: poll::run,
        served_by: ServedBy::Server { all_at_once: true },
        sigpipe: SigpipeMode::Ignore,
        options: &["max-children"],
    },
];

/// The options that only some models take (the others take every model).
pub const MODEL_OPTIONS: [&str; 7] =
    ["workers", "max-children", "no-reaper", "no-join", "splice", "leak-asock", "leak-msock"];

/// The model named `name`.
pub fn model(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|model| model.name == name)
}

/// The default model: the lab's server, a child for each client.
pub fn default() -> &'static Model {
    &MODELS[0]
}

/// Checks that `model` takes every option of `given` (long names, without
/// the dashes); the error names the first that it does not take, the
/// model, and the models that take it.
pub fn check_options<'a>(model: &Model, given: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    for option in given {
        if MODEL_OPTIONS.contains(&option) && !model.options.contains(&option) {
            let takers: Vec<&str> =
                MODELS.iter().filter(|m| m.options.contains(&option)).map(|m| m.name).collect();
            return Err(format!(
                "--{option} does not apply to --mode {} (only to {})",
                model.name,
                takers.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_option_is_taken_by_some_model() {
        for option in MODEL_OPTIONS {
            assert!(MODELS.iter().any(|m| m.options.contains(&option)), "{option}");
        }
        for model in &MODELS {
            for option in model.options {
                assert!(MODEL_OPTIONS.contains(option), "{}: {option}", model.name);
            }
        }
    }

    #[test]
    fn an_option_a_model_does_not_take_is_named_with_the_model() {
        let poll = model("poll").unwrap();
        assert_eq!(
            check_options(poll, ["splice"]),
            Err("--splice does not apply to --mode poll (only to fork, iterative, prefork, thread)"
                .to_string())
        );
        assert_eq!(check_options(poll, ["max-children", "grace"]), Ok(()));
    }

    #[test]
    fn the_options_a_model_takes_follow_who_serves_its_clients() {
        for model in &MODELS {
            let served_by = model.served_by;
            assert_eq!(model.options.contains(&"max-children"), !served_by.one_at_a_time(), "{}", model.name);
            assert_eq!(model.options.contains(&"no-reaper"), served_by.processes(), "{}", model.name);
            assert_eq!(model.options.contains(&"no-join"), served_by == ServedBy::Threads, "{}", model.name);
            let workers = served_by == ServedBy::Processes { in_advance: true };
            assert_eq!(model.options.contains(&"workers"), workers, "{}", model.name);
        }
        assert_eq!(default().served_by, ServedBy::Processes { in_advance: false });
    }
}
