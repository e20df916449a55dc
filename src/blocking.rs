//! Blocking work (libvirt calls, SQLite, probes over SSH) run off the async threads, the one way
//! every async entry point of the engine does it.

use crate::error::{Error, Result};

/// Runs `f` on tokio's blocking pool and returns its result. A panic in `f` is re-raised here; a
/// task cancelled because the runtime is shutting down becomes an error naming `what`.
pub(crate) async fn run<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::io(
            what,
            std::io::Error::other(format!("{e}: Twofold is shutting down; run it again")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_result_and_the_error_of_the_work() {
        assert_eq!(run("adding", || Ok(2 + 2)).await.unwrap(), 4);
        let err = run::<()>("failing", || Err(Error::Lab("no lab".into())))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no lab"), "{err}");
    }
}
