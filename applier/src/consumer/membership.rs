//! A worker's view of its group: who said they are alive lately, who said goodbye. Pure state,
//! fed with beacons and the clock by [`super::group`].
//!
//! A beacon is an AMQP message on the members exchange: its `type` says `alive` or `leaving`, its
//! body is the sender's member id as text. Anything else on that exchange is ignored.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// What one worker tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Beacon {
    /// Sent every heartbeat interval, and at once when a new member shows up.
    Alive(Uuid),
    /// Sent on graceful shutdown, so the others take the partitions over without waiting.
    Leaving(Uuid),
}

impl Beacon {
    const ALIVE: &'static str = "alive";
    const LEAVING: &'static str = "leaving";

    /// The `type` property of the message.
    pub fn kind(&self) -> &'static str {
        match self {
            Beacon::Alive(_) => Beacon::ALIVE,
            Beacon::Leaving(_) => Beacon::LEAVING,
        }
    }

    /// The body of the message.
    pub fn body(&self) -> Vec<u8> {
        let (Beacon::Alive(member) | Beacon::Leaving(member)) = self;
        member.to_string().into_bytes()
    }

    /// Reads a beacon from a message's `type` and body; `None` for anything else.
    pub fn parse(kind: Option<&str>, body: &[u8]) -> Option<Beacon> {
        let member = Uuid::try_parse_ascii(body).ok()?;
        match kind? {
            Beacon::ALIVE => Some(Beacon::Alive(member)),
            Beacon::LEAVING => Some(Beacon::Leaving(member)),
            _ => None,
        }
    }
}

/// What a beacon changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard {
    /// A member not seen before (or seen expiring): the live set grew.
    Joined,
    /// A known member is still alive, or the beacon is our own.
    Refreshed,
    /// A member said goodbye: the live set shrank.
    Left,
    /// A late beacon of a member that already left.
    Ignored,
}

/// The live members as this worker sees them.
#[derive(Debug)]
pub(super) struct Membership {
    me: Uuid,
    timeout: Duration,
    /// Other members, by the time their last beacon arrived.
    others: HashMap<Uuid, Instant>,
    /// Members that said goodbye, kept for one timeout so a beacon overtaken by their goodbye
    /// does not bring them back.
    departed: HashMap<Uuid, Instant>,
}

impl Membership {
    pub fn new(me: Uuid, timeout: Duration) -> Membership {
        Membership {
            me,
            timeout,
            others: HashMap::new(),
            departed: HashMap::new(),
        }
    }

    /// Takes in a beacon that arrived at `now`.
    pub fn heard(&mut self, beacon: Beacon, now: Instant) -> Heard {
        match beacon {
            Beacon::Alive(member) if member == self.me => Heard::Refreshed,
            Beacon::Alive(member) if self.departed.contains_key(&member) => Heard::Ignored,
            Beacon::Alive(member) => match self.others.insert(member, now) {
                Some(_) => Heard::Refreshed,
                None => Heard::Joined,
            },
            Beacon::Leaving(member) if member == self.me => Heard::Refreshed,
            Beacon::Leaving(member) => {
                self.departed.insert(member, now);
                match self.others.remove(&member) {
                    Some(_) => Heard::Left,
                    None => Heard::Ignored,
                }
            }
        }
    }

    /// Drops members silent for longer than the timeout at `now`; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Uuid> {
        let timeout = self.timeout;
        let alive = |at: &Instant| now.saturating_duration_since(*at) <= timeout;
        self.departed.retain(|_, at| alive(at));
        let expired: Vec<Uuid> = self
            .others
            .iter()
            .filter(|(_, at)| !alive(at))
            .map(|(member, _)| *member)
            .collect();
        for member in &expired {
            self.others.remove(member);
        }
        expired
    }

    /// Every live member, this worker included, sorted.
    pub fn live(&self) -> Vec<Uuid> {
        let mut live: Vec<Uuid> = self.others.keys().copied().collect();
        live.push(self.me);
        live.sort_unstable();
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn beacons_round_trip_and_junk_is_ignored() {
        let member = Uuid::new_v4();
        for beacon in [Beacon::Alive(member), Beacon::Leaving(member)] {
            assert_eq!(
                Beacon::parse(Some(beacon.kind()), &beacon.body()),
                Some(beacon)
            );
        }
        let body = member.to_string().into_bytes();
        assert_eq!(Beacon::parse(None, &body), None);
        assert_eq!(Beacon::parse(Some("hello"), &body), None);
        assert_eq!(Beacon::parse(Some("alive"), b"not a uuid"), None);
        assert_eq!(Beacon::parse(Some("alive"), &[0xff, 0xfe]), None);
    }

    #[test]
    fn members_join_refresh_and_leave() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Instant::now();
        let mut view = Membership::new(me, TIMEOUT);
        assert_eq!(view.live(), vec![me]);
        assert_eq!(view.heard(Beacon::Alive(me), now), Heard::Refreshed);
        assert_eq!(view.heard(Beacon::Alive(other), now), Heard::Joined);
        assert_eq!(view.heard(Beacon::Alive(other), now), Heard::Refreshed);
        let mut both = vec![me, other];
        both.sort_unstable();
        assert_eq!(view.live(), both);
        assert_eq!(view.heard(Beacon::Leaving(other), now), Heard::Left);
        assert_eq!(view.live(), vec![me]);
        // A heartbeat overtaken by the goodbye does not bring the member back.
        assert_eq!(view.heard(Beacon::Alive(other), now), Heard::Ignored);
        assert_eq!(view.live(), vec![me]);
        assert_eq!(view.heard(Beacon::Leaving(other), now), Heard::Ignored);
    }

    #[test]
    fn a_silent_member_expires_after_the_timeout() {
        let (me, quiet, talking) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let start = Instant::now();
        let mut view = Membership::new(me, TIMEOUT);
        view.heard(Beacon::Alive(quiet), start);
        view.heard(Beacon::Alive(talking), start);
        view.heard(Beacon::Alive(talking), start + Duration::from_secs(4));
        assert!(view.expire(start + TIMEOUT).is_empty(), "not yet");
        assert_eq!(view.expire(start + Duration::from_secs(6)), vec![quiet]);
        assert_eq!(view.live().len(), 2);
        // An expired member that speaks again is a new member.
        let later = start + Duration::from_secs(7);
        assert_eq!(view.heard(Beacon::Alive(quiet), later), Heard::Joined);
        // A goodbye is remembered for one timeout only.
        view.heard(Beacon::Leaving(talking), later);
        view.expire(later + Duration::from_secs(6));
        let much_later = later + Duration::from_secs(7);
        assert_eq!(
            view.heard(Beacon::Alive(talking), much_later),
            Heard::Joined
        );
    }
}
