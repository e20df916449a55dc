//! Progress on a terminal: one indicatif bar per phase, messages and typed events (as their
//! text) printed above it.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use twofold::progress::{Progress, ProgressEvent};

pub struct TermProgress {
    bar: Mutex<Option<ProgressBar>>,
    quiet: bool,
}

impl TermProgress {
    /// `quiet` (for --json) keeps stdout clean: nothing is drawn or printed.
    pub fn new(quiet: bool) -> Self {
        TermProgress {
            bar: Mutex::new(None),
            quiet,
        }
    }
}

impl Progress for TermProgress {
    fn begin(&self, phase: &str, total: Option<u64>) {
        if self.quiet {
            return;
        }
        let bar = match total {
            Some(t) => {
                let b = ProgressBar::new(t);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:28} [{bar:32}] {percent:>3}% {elapsed_precise}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b
            }
            None => {
                let b = ProgressBar::new_spinner();
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            }
        };
        bar.set_message(phase.to_string());
        if let Some(old) = self.bar.lock().unwrap().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn update(&self, done: u64, total: Option<u64>) {
        if let Some(b) = self.bar.lock().unwrap().as_ref() {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    }

    fn message(&self, line: &str) {
        if self.quiet {
            return;
        }
        match self.bar.lock().unwrap().as_ref() {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }

    /// Bytes moved move the bar; a step's start names it on the bar; every other event is
    /// printed as its text.
    fn event(&self, e: &ProgressEvent) {
        if let ProgressEvent::Transferred {
            done_bytes,
            total_bytes,
        } = e
        {
            return self.update(*done_bytes, *total_bytes);
        }
        if self.quiet {
            return;
        }
        if let ProgressEvent::StepStarted { step } = e {
            if let Some(b) = self.bar.lock().unwrap().as_ref() {
                b.set_message(format!("[{}/{}] {}", step.number, step.total, step.title));
            }
        }
        if let Some(text) = e.text() {
            self.message(&text);
        }
    }
}
