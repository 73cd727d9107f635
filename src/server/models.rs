//! The table of server models: each one's entry, and the options that
//! only some of them take. `--mode`, its help, the check of the options,
//! the benchmark and the tests read it; a new model is one more entry.

use super::{fork, iterative, poll, prefork, thread, Model};
use crate::signals::SigpipeMode;

/// Every model, the default (the lab's fork server) first.
pub static MODELS: [Model; 5] = [
    Model {
        name: "fork",
        about: "a child process per client (the lab's server)",
        run: fork::run,
        forks: true,
        sigpipe: SigpipeMode::Default,
        options: &["max-children", "no-reaper", "splice", "leak-asock", "leak-msock"],
    },
    Model {
        name: "iterative",
        about: "one client at a time, by the server itself (the previous lab's server)",
        run: iterative::run,
        forks: false,
        sigpipe: SigpipeMode::Ignore,
        options: &["splice"],
    },
    Model {
        name: "prefork",
        about: "N children started in advance, each accepting clients one after another",
        run: prefork::run,
        forks: true,
        sigpipe: SigpipeMode::Ignore,
        options: &["workers", "max-children", "no-reaper", "splice"],
    },
    Model {
        name: "thread",
        about: "a thread per client",
        run: thread::run,
        forks: false,
        sigpipe: SigpipeMode::Ignore,
        options: &["max-children", "no-join", "splice"],
    },
    Model {
        name: "poll",
        about: "one process, one thread, every client at once with poll(2)",
        run: poll::run,
        forks: false,
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

impl Model {
    /// Checks that this model takes every option of `given` (long names,
    /// without the dashes); the error names the first that it does not
    /// take, this model, and the models that take it.
    pub fn check_options<'a>(&self, given: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        for option in given {
            if MODEL_OPTIONS.contains(&option) && !self.options.contains(&option) {
                let takers: Vec<&str> =
                    MODELS.iter().filter(|m| m.options.contains(&option)).map(|m| m.name).collect();
                return Err(format!(
                    "--{option} does not apply to --mode {} (only to {})",
                    self.name,
                    takers.join(", ")
                ));
            }
        }
        Ok(())
    }
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
            poll.check_options(["splice"]),
            Err("--splice does not apply to --mode poll (only to fork, iterative, prefork, thread)"
                .to_string())
        );
        assert_eq!(poll.check_options(["max-children", "grace"]), Ok(()));
    }
}
