//! The identity graph behind [`Shape::expected_merges`](crate::Shape::expected_merges).

use super::model::NONE;

/// Union-find over identifiers (anonymousIds and userIds), used to count
/// the merges the stream implies. See [`Shape::expected_merges`](crate::Shape::expected_merges).
#[derive(Debug, Default)]
pub(super) struct Graph {
    pub(super) parent: Vec<u32>,
    /// For roots: the person whose userId the component holds, or `NONE`.
    pub(super) user: Vec<u32>,
    /// Whether the identifier already appeared in an emitted event.
    pub(super) seen: Vec<bool>,
    pub(super) merges: u64,
}

impl Graph {
    pub(super) fn add(&mut self, user: u32) -> u32 {
        let id = self.parent.len() as u32;
        self.parent.push(id);
        self.user.push(user);
        self.seen.push(false);
        id
    }

    pub(super) fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let gp = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    /// Records one event carrying the given identifiers.
    pub(super) fn observe(&mut self, anon: u32, user: u32) {
        if anon != NONE && user != NONE {
            let both_seen = self.seen[anon as usize] && self.seen[user as usize];
            let (ra, ru) = (self.find(anon), self.find(user));
            if ra != ru {
                let (ua, uu) = (self.user[ra as usize], self.user[ru as usize]);
                // A profile holds at most one userId: such a link is refused.
                if ua == NONE || uu == NONE {
                    self.parent[ra as usize] = ru;
                    if uu == NONE {
                        self.user[ru as usize] = ua;
                    }
                    if both_seen {
                        self.merges += 1;
                    }
                }
            }
        }
        for x in [anon, user] {
            if x != NONE {
                self.seen[x as usize] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_counts_merges_only_between_known_identities() {
        let mut g = Graph::default();
        let a1 = g.add(NONE);
        let a2 = g.add(NONE);
        let u = g.add(0);
        let v = g.add(1);
        g.observe(a1, NONE);
        g.observe(a1, u); // sign-up: u is new, no merge
        assert_eq!(g.merges, 0);
        g.observe(a2, NONE);
        g.observe(a2, u); // login on a second device with history: merge
        assert_eq!(g.merges, 1);
        g.observe(v, NONE);
        g.observe(a2, v); // shared device, second user: refused
        assert_eq!(g.merges, 1);
        assert_ne!(g.find(a2), g.find(v));
    }
}
