//! A spinner on stderr for long work (RSA-4096 generation), shown only when stderr is a
//! terminal, so logs and pipes stay clean.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Spins until dropped.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts spinning after `message` (nothing happens when stderr is not a terminal).
    pub fn start(message: String) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let frames = ['|', '/', '-', '\\'];
                let started = Instant::now();
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    eprint!(
                        "\r{message} {} {}s",
                        frames[i % frames.len()],
                        started.elapsed().as_secs()
                    );
                    let _ = std::io::stderr().flush();
                    std::thread::sleep(Duration::from_millis(120));
                    i += 1;
                }
                // Clear the line.
                eprint!("\r\x1b[2K");
                let _ = std::io::stderr().flush();
            })
        });
        Spinner { stop, thread }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
