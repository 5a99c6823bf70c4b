//! One connection type for a single Redis and for a Redis Cluster, so the
//! rest of the crate sends its commands and pipelines the same way to both.
//!
//! On a cluster, every command goes to the master of its key's hash slot
//! (the Redis client follows `MOVED` and `ASK`, and reloads the slot map
//! after a failover). A pipeline may only touch one slot there, so a
//! pipeline whose commands name keys of several slots is split here by
//! slot (a `MULTI ... EXEC` block stays whole, in the slot of its first
//! key), the parts go out at once, and the replies come back in the
//! pipeline's order. Commands of one slot keep their order; commands of
//! different slots touch different keys, so their order never mattered.
//! The cluster client has no response deadline of its own (it retries
//! for a long time), so every request here gets one.
//!
//! Depends on the Redis client only.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::time::Duration;

use deadpool_redis::cluster::ClusterConnection;
use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_routing::Slot;
use deadpool_redis::redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use futures_util::future::try_join_all;

/// A multiplexed connection to one Redis or to a whole cluster; cheap to
/// clone (clones share the sockets).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One Redis server.
    Single(MultiplexedConnection),
    /// A Redis Cluster, each request bounded by `timeout`.
    Cluster {
        connection: ClusterConnection,
        timeout: Duration,
    },
}

impl Conn {
    /// How long a request on this handle may wait for its reply.
    pub(crate) fn set_response_timeout(&mut self, response_timeout: Duration) {
        match self {
            Conn::Single(connection) => connection.set_response_timeout(response_timeout),
            Conn::Cluster { timeout, .. } => *timeout = response_timeout,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(connection) => connection.req_packed_command(cmd),
            Conn::Cluster {
                connection,
                timeout,
            } => Box::pin(bounded(*timeout, connection.req_packed_command(cmd))),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Conn::Cluster {
                connection,
                timeout,
            } => Box::pin(bounded(
                *timeout,
                by_slot(connection, pipeline, offset, count),
            )),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(connection) => connection.get_db(),
            Conn::Cluster { .. } => 0,
        }
    }
}

/// `work`, or a timeout error once `timeout` has passed.
async fn bounded<T>(
    timeout: Duration,
    work: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(io::Error::new(
            io::ErrorKind::TimedOut,
            "the redis cluster did not answer in time",
        ))),
    }
}

/// Runs `pipeline` on the cluster as one pipeline per hash slot, at once,
/// and answers as one pipeline would: replies `offset..offset + count` in
/// the pipeline's order.
async fn by_slot(
    connection: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let groups = slot_groups(&commands);
    if pipeline.is_transaction() || groups.len() <= 1 {
        return connection
            .req_packed_commands(pipeline, offset, count)
            .await;
    }
    let parts = groups.iter().map(|indices| {
        let mut part = Pipeline::with_capacity(indices.len());
        for &index in indices {
            part.add_command(commands[index].clone());
        }
        let mut connection = connection.clone();
        async move {
            let replies = connection.req_packed_commands(&part, 0, part.len()).await?;
            Ok::<_, RedisError>(replies)
        }
    });
    let answers = try_join_all(parts).await?;
    let mut replies: Vec<Value> = vec![Value::Nil; commands.len()];
    for (indices, answer) in groups.iter().zip(answers) {
        if answer.len() != indices.len() {
            return Err(RedisError::from((
                deadpool_redis::redis::ErrorKind::UnexpectedReturnType,
                "a part of a pipeline got another number of replies than it sent",
            )));
        }
        for (&index, reply) in indices.iter().zip(answer) {
            replies[index] = reply;
        }
    }
    Ok(replies.into_iter().skip(offset).take(count).collect())
}

/// The pipeline's command indices grouped by the hash slot they go to, in
/// order of first appearance; a `MULTI ... EXEC` block stays in one group
/// (the slot of its first key), and commands without a key join the group
/// of the commands before them.
fn slot_groups(commands: &[&Cmd]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_slot: HashMap<Slot, usize> = HashMap::new();
    let mut leading: Vec<usize> = Vec::new();
    let mut index = 0;
    while index < commands.len() {
        let start = index;
        if is_named(commands[index], b"MULTI") {
            while index < commands.len()
                && !is_named(commands[index], b"EXEC")
                && !is_named(commands[index], b"DISCARD")
            {
                index += 1;
            }
        }
        let end = (index + 1).min(commands.len());
        index = end;
        let slot = commands[start..end].iter().find_map(|cmd| slot_of(cmd));
        let group = match slot {
            Some(slot) => *by_slot.entry(slot).or_insert_with(|| {
                // Keyless commands before the first key go with it.
                groups.push(std::mem::take(&mut leading));
                groups.len() - 1
            }),
            None if groups.is_empty() => {
                leading.extend(start..end);
                continue;
            }
            None => groups.len() - 1,
        };
        groups[group].extend(start..end);
    }
    if !leading.is_empty() {
        groups.push(leading);
    }
    groups
}

/// The hash slot of the (first) key `cmd` names, for the commands this
/// crate sends: the key after `STREAMS` for `XREAD`, the first key of
/// `EVAL`/`EVALSHA`, none for commands without keys (`MULTI`, `EXEC`,
/// `PING`, `SCRIPT`, `CLUSTER`, ...), else the first argument.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => bytes,
            _ => &b"0"[..],
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"MULTI" | b"EXEC" | b"DISCARD" | b"PING" | b"SCRIPT" | b"CLUSTER" | b"INFO" | b"SCAN"
        | b"FLUSHDB" | b"DBSIZE" => return None,
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if keys == 0 {
                return None;
            }
            args.get(3)?
        }
        b"XREAD" | b"XREADGROUP" => {
            let at = args
                .iter()
                .position(|arg| arg.eq_ignore_ascii_case(b"STREAMS"))?;
            args.get(at + 1)?
        }
        _ => args.get(1)?,
    };
    Some(Slot::for_key(key))
}

fn is_named(cmd: &Cmd, name: &[u8]) -> bool {
    matches!(cmd.args_iter().next(), Some(Arg::Simple(first)) if first.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use deadpool_redis::redis;

    use super::*;

    #[test]
    fn a_pipeline_is_grouped_by_slot_with_transactions_kept_whole() {
        let mut pipe = redis::Pipeline::new();
        pipe.cmd("MULTI")
            .cmd("APPEND")
            .arg("w:{a}")
            .arg("x")
            .cmd("GETEX")
            .arg("w:{a}")
            .cmd("EXEC");
        pipe.cmd("MULTI")
            .cmd("APPEND")
            .arg("w:{b}")
            .arg("x")
            .cmd("GETEX")
            .arg("w:{b}")
            .cmd("EXEC");
        pipe.cmd("DEL").arg("s:{a}");
        let commands: Vec<&Cmd> = pipe.cmd_iter().collect();
        assert_eq!(
            slot_groups(&commands),
            vec![vec![0, 1, 2, 3, 8], vec![4, 5, 6, 7]]
        );
    }

    #[test]
    fn a_pipeline_of_one_slot_is_one_group() {
        let mut pipe = redis::Pipeline::new();
        pipe.cmd("PING")
            .cmd("GET")
            .arg("{u}1")
            .cmd("GET")
            .arg("{u}2");
        let commands: Vec<&Cmd> = pipe.cmd_iter().collect();
        assert_eq!(slot_groups(&commands), vec![vec![0, 1, 2]]);
    }
}
