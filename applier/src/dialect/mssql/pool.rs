//! A small, bounded pool of SQL Server connections.
//!
//! A connection leaves the pool for one transaction and comes back only through
//! [`Conn::release`], after a commit. Dropped any other way (an error, a timeout, a cancelled
//! future) it is closed, and the server rolls back whatever was open: no connection ever returns
//! mid-transaction, half-way through a response, or with a changed session (a hook's `USE`).
//! A connection idle for a while is checked with a round trip before it is handed out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiberius::Config;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::error::{classify, connect_error};
use super::statement::{PING, session_setup};
use crate::error::ApplyError;

/// A driver connection.
pub type Client = tiberius::Client<Compat<TcpStream>>;

/// Limits of the pool and of its connections.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Connections at most: an upper bound on tenants applied at once by this process.
    pub size: usize,
    /// Establishing one connection (TCP, TLS, login).
    pub connect_timeout: Duration,
    /// Waiting for a free connection.
    pub wait_timeout: Duration,
    /// The driver's limit on one round trip (a server silent for this long is given up on).
    pub command_timeout: Duration,
    /// `SET LOCK_TIMEOUT`: waiting for a lock fails (transiently, 1222) after this long.
    pub lock_timeout: Duration,
    /// A connection idle longer than this is checked before use.
    pub check_after: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            size: 16,
            connect_timeout: Duration::from_secs(15),
            wait_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            lock_timeout: Duration::from_secs(60),
            check_after: Duration::from_secs(30),
        }
    }
}

struct Idle {
    client: Client,
    since: Instant,
}

struct Inner {
    config: Config,
    options: PoolOptions,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
}

/// The pool; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// A connection taken from the pool. Dropped without [`Conn::release`], it is closed.
pub struct Conn {
    client: Option<Client>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// No connection is opened here: a server that is down fails the first use (transiently).
    pub fn new(mut config: Config, options: PoolOptions) -> Pool {
        config.handshake_timeout(Some(options.connect_timeout));
        config.command_timeout(Some(options.command_timeout));
        Pool {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(options.size.max(1))),
                options,
            }),
        }
    }

    /// A connection: an idle one (checked if it idled long), or a new one.
    pub async fn get(&self) -> Result<Conn, ApplyError> {
        let inner = &self.inner;
        let permit = tokio::time::timeout(
            inner.options.wait_timeout,
            inner.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| ApplyError::Unavailable {
            message: format!(
                "all {} SQL Server connections stayed busy for {:?}",
                inner.options.size, inner.options.wait_timeout
            ),
        })?
        .map_err(|_| ApplyError::Unavailable {
            message: "the connection pool is closed".into(),
        })?;
        while let Some(idle) = self.take_idle() {
            let mut client = idle.client;
            if idle.since.elapsed() < inner.options.check_after || ping(&mut client).await.is_ok() {
                return Ok(self.conn(client, permit));
            }
        }
        let client = connect(&inner.config, &inner.options).await?;
        Ok(self.conn(client, permit))
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.pop()
    }

    fn conn(&self, client: Client, permit: OwnedSemaphorePermit) -> Conn {
        Conn {
            client: Some(client),
            pool: self.inner.clone(),
            _permit: permit,
        }
    }
}

impl Conn {
    pub fn client(&mut self) -> Result<&mut Client, ApplyError> {
        self.client.as_mut().ok_or_else(|| ApplyError::Unavailable {
            message: "the connection was already given back".into(),
        })
    }

    /// Gives a clean connection (no open transaction, nothing unread) back to the pool.
    pub fn release(mut self) {
        if let Some(client) = self.client.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push(Idle {
                client,
                since: Instant::now(),
            });
        }
    }
}

/// Runs one batch of statements without parameters (SQL Server's "SQL batch", not a
/// parameterised `sp_executesql` call) and reads every result.
///
/// Statements that change the session must run this way: a temp table created inside
/// `sp_executesql` is dropped when that call returns, and `SET`, `USE` and `BEGIN TRANSACTION`
/// would not outlive it either.
pub async fn batch(client: &mut Client, sql: &str) -> Result<(), ApplyError> {
    client
        .simple_query(sql)
        .await
        .map_err(classify)?
        .into_results()
        .await
        .map_err(classify)?;
    Ok(())
}

async fn ping(client: &mut Client) -> Result<(), ApplyError> {
    batch(client, PING).await
}

/// Opens a connection (following one Azure gateway redirect) and prepares the session.
async fn connect(config: &Config, options: &PoolOptions) -> Result<Client, ApplyError> {
    let timed_out = || ApplyError::Timeout {
        operation: "connecting to SQL Server",
        secs: options.connect_timeout.as_secs(),
    };
    let mut config = config.clone();
    let mut redirects = 0;
    let mut client = loop {
        let tcp = tokio::time::timeout(
            options.connect_timeout,
            TcpStream::connect(config.get_addr()),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| ApplyError::Unavailable {
            message: format!("cannot reach SQL Server at {}: {e}", config.get_addr()),
        })?;
        // Small statements go out at once; Nagle would hold them back.
        tcp.set_nodelay(true).map_err(|e| ApplyError::Unavailable {
            message: format!("socket: {e}"),
        })?;
        match tokio::time::timeout(
            options.connect_timeout,
            tiberius::Client::connect(config.clone(), tcp.compat_write()),
        )
        .await
        .map_err(|_| timed_out())?
        {
            Ok(client) => break client,
            Err(tiberius::error::Error::Routing { host, port }) if redirects == 0 => {
                redirects += 1;
                config.host(host);
                config.port(port);
            }
            Err(e) => return Err(connect_error(e)),
        }
    };
    let lock_ms = u64::try_from(options.lock_timeout.as_millis()).unwrap_or(u64::MAX);
    batch(&mut client, &session_setup(lock_ms).join(";\n")).await?;
    Ok(client)
}
