//! Lua scripts run by their hash, many to a round trip, and loaded again when
//! Redis has lost them.

use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{self, Cmd, ErrorKind, RedisError, Script, ServerErrorKind, Value};

/// Runs `script` `count` times in one pipeline (not a transaction), in order,
/// and returns one reply per run, in the same order. `fill(i, cmd)` appends
/// the number of keys, the keys and the arguments of run `i` to an `EVALSHA
/// <hash>` command; it is called again for a run that has to be repeated.
///
/// Only the script's hash is sent. When Redis answers `NOSCRIPT` (it lost its
/// scripts: a restart, a failover, `SCRIPT FLUSH`), the script is loaded and
/// the runs that were refused are sent again, once, in their order. A refused
/// run did nothing, so nothing runs twice.
///
/// A run that failed in Redis comes back as [`Value::ServerError`], for the
/// caller to classify with the key it concerns.
///
/// # Errors
/// The connection's errors (unreachable, timed out, ...), and
/// [`ErrorKind::UnexpectedReturnType`] when Redis answers with another number
/// of replies than runs.
pub(crate) async fn eval_many<C>(
    connection: &mut C,
    script: &Script,
    count: usize,
    mut fill: impl FnMut(usize, &mut Cmd),
) -> Result<Vec<Value>, RedisError>
where
    C: ConnectionLike + Send,
{
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut replies = run(connection, script, 0..count, &mut fill).await?;
    let refused: Vec<usize> = replies
        .iter()
        .enumerate()
        .filter(|(_, reply)| is_noscript(reply))
        .map(|(index, _)| index)
        .collect();
    if refused.is_empty() {
        return Ok(replies);
    }
    script.load_async(connection).await?;
    let retried = run(connection, script, refused.iter().copied(), &mut fill).await?;
    for (index, reply) in refused.into_iter().zip(retried) {
        replies[index] = reply;
    }
    Ok(replies)
}

/// One pipeline of `EVALSHA`s for the runs in `indices`.
async fn run<C>(
    connection: &mut C,
    script: &Script,
    indices: impl ExactSizeIterator<Item = usize>,
    fill: &mut impl FnMut(usize, &mut Cmd),
) -> Result<Vec<Value>, RedisError>
where
    C: ConnectionLike + Send,
{
    let expected = indices.len();
    let mut pipe = redis::Pipeline::with_capacity(expected);
    for index in indices {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash());
        fill(index, &mut cmd);
        pipe.add_command(cmd);
    }
    // Each run's error stays in its reply rather than failing the others.
    let replies: Vec<Value> = pipe.ignore_errors().query_async(connection).await?;
    if replies.len() == expected {
        Ok(replies)
    } else {
        Err(RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "a pipeline of scripts got another number of replies than it sent",
            format!("{} replies to {expected} scripts", replies.len()),
        )))
    }
}

fn is_noscript(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(error) if error.kind() == Some(ServerErrorKind::NoScript))
}
