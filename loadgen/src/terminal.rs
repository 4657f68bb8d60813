//! What loadgen shows on the terminal while it works: whether to show progress at all, and the
//! one style of progress bar the seeder and a run both draw on stderr.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A live line on a terminal, plain lines every few seconds otherwise (on stderr).
    #[default]
    Auto,
    /// Nothing (tests, libraries).
    Hidden,
}

/// A bar of `total` steps on stderr drawn with indicatif's `template` (its default style if the
/// template does not parse).
pub fn progress_bar(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
