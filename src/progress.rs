//! What a build says on stderr while it works: its steps and layers running, done and
//! found in the cache.
//!
//! It exists so that the build's orchestration (`build.rs`) only reports events, from
//! whichever rayon thread does the work, and one place decides how they look: on a
//! terminal, live spinners and a summary bar (indicatif) with a permanent line above
//! them for every step done; elsewhere (CI logs, pipes, tests) plain lines, each in one
//! write so that steps finishing at once never mix. stdout is never written: it
//! carries the machine-readable output (`NAME DIGEST`, `--json`).
//!
//! Labels are the caller's (`hello`, or `hello linux/arm64`): they are shown, never
//! parsed.

use crate::plan::ImagePlan;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// What a build prints on stderr about its steps (`--quiet`, `--verbose`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StepLog {
    /// Nothing but errors (a failing step's output is always shown).
    Quiet,
    /// `step NAME: ran` or `step NAME: cached`, one line per step.
    #[default]
    Lines,
    /// The lines, and the output of every step that ran.
    Verbose,
}

/// What a step did (`build::step` says, this module shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Ran,
    Cached,
}

/// `--progress`: how a build shows its work on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal (and `TERM` is set and not `dumb`), else lines.
    #[default]
    Auto,
    /// Lines, even on a terminal (for logs taken from one).
    Plain,
    /// Bars, even when stderr is not a terminal.
    Tty,
}

/// How a layer was had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOutcome {
    Built,
    Cached,
}

/// The display of one build. Events may come from any thread.
pub struct Progress {
    log: StepLog,
    /// `None`: plain lines.
    bars: Option<Bars>,
}

/// Spinner and summary redraws a second: enough to look alive, little enough to cost
/// nothing next to the work.
const HZ: u8 = 10;

impl Progress {
    /// The display for `log` (`-q`, `-v`) and `mode`, looking at stderr and `TERM`.
    pub fn new(log: StepLog, mode: ProgressMode) -> Progress {
        let target = match (log, mode) {
            // Quiet means no word about steps: no bars either.
            (StepLog::Quiet, _) | (_, ProgressMode::Plain) => None,
            (_, ProgressMode::Tty) => {
                Some(ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::buffered_stderr()), HZ))
            }
            (_, ProgressMode::Auto) => draws_bars(std::io::stderr().is_terminal(), std::env::var_os("TERM").as_deref())
                .then(|| ProgressDrawTarget::stderr_with_hz(HZ)),
        };
        Progress::with_target(log, target)
    }

    /// Plain lines whatever stderr is.
    pub fn plain(log: StepLog) -> Progress {
        Progress { log, bars: None }
    }

    fn with_target(log: StepLog, target: Option<ProgressDrawTarget>) -> Progress {
        // A hidden target would swallow the permanent lines too: lines are better.
        let bars = target.map(Bars::new).filter(|b| !b.multi.is_hidden());
        Progress { log, bars }
    }

    /// Whether bars are drawn (else plain lines).
    pub fn draws_bars(&self) -> bool {
        self.bars.is_some()
    }

    /// `n` more steps or layers are to come: the summary's total.
    pub fn expect(&self, n: usize) {
        if let Some(bars) = &self.bars {
            bars.summary.inc_length(n as u64);
        }
    }

    /// Runs `f` with the bars cleared, for work that writes to stderr itself (a push
    /// reports what it uploaded); they are drawn again after.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bars {
            Some(bars) => bars.multi.suspend(f),
            None => f(),
        }
    }

    pub fn step_started(&self, label: &str) {
        if let Some(bars) = &self.bars {
            bars.start(format!("step {label}"));
        }
    }

    /// A step done; `output` is what its commands printed (empty when cached).
    pub fn step_finished(&self, label: &str, outcome: StepOutcome, output: &str) {
        let text = step_text(label, outcome, output, self.log);
        match &self.bars {
            Some(bars) => bars.finish(&format!("step {label}"), &text, |c| match outcome {
                StepOutcome::Ran => c.ran += 1,
                StepOutcome::Cached => c.cached += 1,
            }),
            None => write_stderr(&text),
        }
    }

    /// A step failed. Nothing is printed: its output comes in full with the error.
    pub fn step_failed(&self, label: &str) {
        if let Some(bars) = &self.bars {
            bars.finish(&format!("step {label}"), "", |c| c.failed += 1);
        }
    }

    pub fn layer_started(&self, label: &str) {
        if let Some(bars) = &self.bars {
            bars.start(format!("layer {label}"));
        }
    }

    /// A layer built, or found in a cache (which needs no `layer_started`).
    pub fn layer_finished(&self, label: &str, outcome: LayerOutcome) {
        let text = layer_text(label, outcome, self.log);
        match &self.bars {
            Some(bars) => bars.finish(&format!("layer {label}"), &text, |c| match outcome {
                LayerOutcome::Built => c.ran += 1,
                LayerOutcome::Cached => c.cached += 1,
            }),
            None => write_stderr(&text),
        }
    }

    pub fn layer_failed(&self, label: &str) {
        if let Some(bars) = &self.bars {
            bars.finish(&format!("layer {label}"), "", |c| c.failed += 1);
        }
    }

    /// The build's end: the bars are cleared, so that what is printed next (the summary,
    /// an error) starts on a clean line. Also done on drop, for builds that end early.
    pub fn finish(&self) {
        if let Some(bars) = &self.bars {
            bars.clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether `auto` draws bars: only for a person at a terminal that can move the cursor
/// (indicatif hides itself for an unset or dumb `TERM` too; deciding here keeps the
/// lines from being swallowed then).
fn draws_bars(stderr_is_terminal: bool, term: Option<&OsStr>) -> bool {
    stderr_is_terminal && term.is_some_and(|t| !t.is_empty() && t != "dumb")
}

/// The permanent text of a step done: `step NAME: ran|cached`, and under `--verbose`
/// what it printed, each line indented `  | `.
fn step_text(label: &str, outcome: StepOutcome, output: &str, log: StepLog) -> String {
    if log == StepLog::Quiet {
        return String::new();
    }
    let what = match outcome {
        StepOutcome::Ran => "ran",
        StepOutcome::Cached => "cached",
    };
    let mut text = format!("step {label}: {what}\n");
    if log == StepLog::Verbose {
        for line in output.lines() {
            text.push_str("  | ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Layers get a line only under `--verbose`: there are many, and the summary counts them.
fn layer_text(label: &str, outcome: LayerOutcome, log: StepLog) -> String {
    if log != StepLog::Verbose {
        return String::new();
    }
    let what = match outcome {
        LayerOutcome::Built => "built",
        LayerOutcome::Cached => "cached",
    };
    format!("layer {label}: {what}\n")
}

/// The labels of layers by key, `IMAGE/LAYER` (and the platform when the image has
/// several), for keys given in the order of `images` → targets → layers. A layer shared
/// by several images or platforms is built once and shown under the first.
pub fn layer_labels<K: Ord + Copy>(images: &[&ImagePlan], keys: &[K]) -> BTreeMap<K, String> {
    let mut labels = BTreeMap::new();
    let layers = images.iter().flat_map(|i| {
        let several = i.targets.len() > 1;
        i.targets.iter().flat_map(move |t| t.layers.iter().map(move |l| (i, t, l, several)))
    });
    for ((image, target, layer, several), key) in layers.zip(keys) {
        labels.entry(*key).or_insert_with(|| match several {
            true => format!("{}/{} {}", image.name, layer.name, target.platform),
            false => format!("{}/{}", image.name, layer.name),
        });
    }
    labels
}

/// One write, so that lines of threads finishing at once do not mix.
fn write_stderr(text: &str) {
    if !text.is_empty() {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// What the summary bar counts: steps and layers alike.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Steps that ran and layers built.
    ran: u64,
    cached: u64,
    failed: u64,
}

impl Counts {
    fn done(&self) -> u64 {
        self.ran + self.cached + self.failed
    }

    fn message(&self) -> String {
        match self.failed {
            0 => format!("{} from the cache", self.cached),
            n => format!("{} from the cache, {n} failed", self.cached),
        }
    }
}

struct Bars {
    multi: MultiProgress,
    /// The last line: done/total.
    summary: ProgressBar,
    /// A spinner for each step or layer at work, by its text.
    running: Mutex<Vec<(String, ProgressBar)>>,
    counts: Mutex<Counts>,
}

impl Bars {
    fn new(target: ProgressDrawTarget) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("[{bar:24}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let summary = multi.add(ProgressBar::new(0).with_style(style).with_message(Counts::default().message()));
        Bars { multi, summary, running: Mutex::new(Vec::new()), counts: Mutex::new(Counts::default()) }
    }

    fn start(&self, text: String) {
        let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = self.multi.insert_before(&self.summary, ProgressBar::new_spinner().with_style(style));
        bar.set_message(text.clone());
        bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(HZ)));
        self.running.lock().unwrap_or_else(|e| e.into_inner()).push((text, bar));
    }

    /// The spinner of `key` (if it had one) goes, `count` is counted, and `text`, when
    /// not empty, is printed above the bars for good.
    fn finish(&self, key: &str, text: &str, count: impl FnOnce(&mut Counts)) {
        let bar = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.iter().position(|(k, _)| k == key).map(|i| running.remove(i).1)
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if !text.is_empty() {
            let _ = self.multi.println(text.strip_suffix('\n').unwrap_or(text));
        }
        let counts = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            count(&mut counts);
            *counts
        };
        // A caller that did not announce its work still gets a total that makes sense.
        if self.summary.length().is_some_and(|len| len < counts.done()) {
            self.summary.set_length(counts.done());
        }
        self.summary.set_message(counts.message());
        self.summary.set_position(counts.done());
    }

    fn clear(&self) {
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, bar) in running {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.summary.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_step_line_has_its_label_and_outcome_and_verbose_adds_the_output_indented() {
        assert_eq!(step_text("hello", StepOutcome::Ran, "a\nb\n", StepLog::Lines), "step hello: ran\n");
        assert_eq!(
            step_text("hello linux/arm64", StepOutcome::Cached, "", StepLog::Lines),
            "step hello linux/arm64: cached\n"
        );
        assert_eq!(
            step_text("hello", StepOutcome::Ran, "a\n\nb", StepLog::Verbose),
            "step hello: ran\n  | a\n  | \n  | b\n"
        );
        assert_eq!(step_text("hello", StepOutcome::Ran, "a\n", StepLog::Quiet), "");
    }

    #[test]
    fn layers_have_a_line_only_under_verbose() {
        assert_eq!(layer_text("app/main", LayerOutcome::Built, StepLog::Verbose), "layer app/main: built\n");
        assert_eq!(layer_text("app/main", LayerOutcome::Cached, StepLog::Verbose), "layer app/main: cached\n");
        assert_eq!(layer_text("app/main", LayerOutcome::Built, StepLog::Lines), "");
        assert_eq!(layer_text("app/main", LayerOutcome::Built, StepLog::Quiet), "");
    }

    #[test]
    fn auto_draws_bars_only_on_a_terminal_that_is_not_dumb() {
        assert!(draws_bars(true, Some(OsStr::new("xterm-256color"))));
        assert!(!draws_bars(false, Some(OsStr::new("xterm-256color"))));
        assert!(!draws_bars(true, Some(OsStr::new("dumb"))));
        assert!(!draws_bars(true, Some(OsStr::new(""))));
        assert!(!draws_bars(true, None));
    }

    #[test]
    fn quiet_and_plain_never_draw_bars() {
        assert!(!Progress::new(StepLog::Quiet, ProgressMode::Tty).draws_bars());
        assert!(!Progress::new(StepLog::Verbose, ProgressMode::Plain).draws_bars());
        assert!(Progress::new(StepLog::Lines, ProgressMode::Tty).draws_bars());
    }

    #[test]
    fn the_summary_counts_cached_and_failed_work() {
        let c = Counts { ran: 2, cached: 3, failed: 0 };
        assert_eq!((c.done(), c.message().as_str()), (5, "3 from the cache"));
        let c = Counts { ran: 0, cached: 1, failed: 2 };
        assert_eq!((c.done(), c.message().as_str()), (3, "1 from the cache, 2 failed"));
    }

    /// A terminal that keeps what is drawn on it, escape sequences included.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn put(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}A"))
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}B"))
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}C"))
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.put(&format!("\x1b[{n}D"))
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.put(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.put(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.put("\r\x1b[2K")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn on_a_terminal_spinners_run_and_finished_steps_are_printed_above_the_bars() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let progress = Progress::with_target(StepLog::Verbose, Some(target));
        assert!(progress.draws_bars());
        progress.expect(3);
        progress.step_started("hello linux/arm64");
        // The spinner's line (drawn at once, and by its ticker).
        std::thread::sleep(Duration::from_millis(250));
        assert!(screen.text().contains("step hello linux/arm64"), "{:?}", screen.text());
        assert!(screen.text().contains("0/3 0 from the cache"), "{:?}", screen.text());
        progress.step_finished("hello linux/arm64", StepOutcome::Ran, "said hi\n");
        progress.layer_finished("app/main", LayerOutcome::Cached);
        let drawn = screen.text();
        // indicatif pads each line to the terminal's width rather than ending it.
        let at = |needle: &str| drawn.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {drawn:?}"));
        assert!(at("step hello linux/arm64: ran ") < at("  | said hi "));
        at("layer app/main: cached ");
        assert!(drawn.contains("2/3 1 from the cache"), "{drawn:?}");
        assert!(progress.bars.as_ref().is_some_and(|b| b.running.lock().unwrap().is_empty()));
        // At the end the bars are wiped: the last thing drawn is a cleared line, with
        // no bar after it.
        drop(progress);
        let drawn = screen.text();
        let after = &drawn[drawn.rfind("\x1b[2K").map_or(0, |i| i + 4)..];
        assert!(!after.contains("from the cache"), "the bars are left on screen: {drawn:?}");
    }

    #[test]
    fn bars_started_but_never_finished_are_cleared_at_the_end() {
        let screen = Screen::default();
        let progress =
            Progress::with_target(StepLog::Lines, Some(ProgressDrawTarget::term_like(Box::new(screen.clone()))));
        progress.layer_started("app/main");
        progress.step_started("broken");
        progress.step_failed("broken");
        assert!(!screen.text().contains("broken: "), "a failed step has no line: {:?}", screen.text());
        progress.finish();
        assert!(progress.bars.as_ref().is_some_and(|b| b.running.lock().unwrap().is_empty()));
        assert!(screen.text().contains("1 failed"), "{:?}", screen.text());
    }
}
