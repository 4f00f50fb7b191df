//! Progress on stderr while the bench runs: one indicatif bar over every planned operation.
//!
//! The bar only draws on a terminal (indicatif hides it otherwise); when it is hidden, each
//! phase is printed as one plain line instead, so a log of a CI run still shows where a slow
//! or stuck bench was.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The bench's progress display.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    planned: u64,
}

impl Progress {
    /// A bar over `total` operations.
    pub fn new(total: u64) -> Progress {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise:.dim} [{bar:30.cyan/blue}] {percent:>3}%  {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { bar, planned: 0 }
    }

    /// A display that shows nothing, for untimed work inside a round (pushing a pipe's items
    /// before they are taken) whose operations the plan does not count.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
            planned: 0,
        }
    }

    /// Names the phase now running.
    pub fn phase(&self, message: String) {
        if self.bar.is_hidden() {
            eprintln!("bench: {message}");
        }
        self.bar.set_message(message);
    }

    /// Prints a line above the bar (or plainly when hidden).
    pub fn note(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("bench: {message}");
        } else {
            self.bar.println(format!("bench: {message}"));
        }
    }

    /// One operation done.
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    /// A planned block of `ops` operations is over (some may have been skipped by a time
    /// limit): the bar jumps to where the plan says it should be.
    pub fn block_done(&mut self, ops: u64) {
        self.planned += ops;
        self.bar
            .set_position(self.planned.min(self.bar.length().unwrap_or(u64::MAX)));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
