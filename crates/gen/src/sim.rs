//! The simulated population and the code that turns its behaviour into
//! Segment payloads. See the crate documentation for the model.

use std::collections::VecDeque;

use crate::catalog::*;
use crate::json::Json;
use crate::rng::{attr, attr_pick, mix64, Rng};
use crate::shape::Shape;

/// "No such entity" marker for `u32` indexes.
const NONE: u32 = u32::MAX;

/// 2024-01-01T00:00:00.000Z
pub(crate) const START_MS: i64 = 1_704_067_200_000;
/// The simulated period: 30 days, whatever the number of events.
pub(crate) const PERIOD_MS: i64 = 30 * 86_400_000;

/// Share of lines that re-emit a recent line verbatim.
pub(crate) const DUPLICATE_SHARE: f64 = 0.005;
/// Share of events sent by the crawler bots.
const BOT_SHARE: f64 = 0.005;
/// Share of events delivered late (timestamp older than what was already sent).
const LATE_SHARE: f64 = 0.01;
/// Channel mix of the remaining (human) events.
const MOBILE_SHARE: f64 = 0.28;
const SERVER_SHARE: f64 = 0.09;
/// Share of sessions started by a visitor never seen before.
const NEW_VISITOR: f64 = 0.45;
/// How much more often a known (signed-up) user returns than a visitor.
const RETURNING_USER_WEIGHT: f64 = 3.0;
/// Share of visitors who will sign up if they come back often enough.
const WILL_SIGN_UP: f64 = 0.40;
/// Probability that a session reuses the visitor's existing device.
const SAME_DEVICE: f64 = 0.85;
/// Probability that a known user's new web device is someone else's.
const SHARED_DEVICE: f64 = 0.06;
/// Probability that a web session starts with a cleared cookie.
const COOKIE_CLEARED: f64 = 0.07;
/// Probability that an app session starts after a reinstall.
const APP_REINSTALLED: f64 = 0.02;

/// The six Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Web,
    Ios,
    Android,
}

/// A human visitor. Becomes a *user* (gets a `userId`) on sign-up.
#[derive(Debug)]
struct Person {
    key: u64,
    /// Identity-graph node of the userId, `NONE` until sign-up.
    user_node: u32,
    signed_up_at: i64,
    /// Number in the current e-mail address (unique across the stream).
    email_no: u64,
    email_emitted: bool,
    user_emitted: bool,
    will_sign_up: bool,
    company: u32,
    sessions: u32,
    orders: u32,
    devices: Vec<u32>,
}

/// A browser profile or an app install.
#[derive(Debug)]
struct Device {
    key: u64,
    platform: Platform,
    /// The person whose device it is (locale, timezone).
    owner: u32,
    /// Identity-graph node of the current anonymousId.
    anon: u32,
    /// Person currently logged in on the device, or `NONE`.
    logged_in: u32,
    source: u32,
    /// In an active session (a device runs one session at a time).
    busy: bool,
}

/// A pointer to a page of the web shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageRef {
    Static(u8),
    Product(u8),
    Category(u8),
    Search(u8),
    Blog(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Referrer {
    External(u8),
    /// The site that ran the campaign the visitor came from.
    Campaign(u8),
    Internal(PageRef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ident {
    Signup,
    Login,
    Refresh,
    EmailChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tr {
    ProductViewed,
    ProductAdded,
    ProductRemoved,
    CartViewed,
    CheckoutStarted,
    OrderCompleted,
    CouponApplied,
    ProductListViewed,
    ProductsSearched,
    VideoStarted,
    VideoCompleted,
    ButtonClicked,
    SignedUp,
    SignedIn,
    AppInstalled,
    AppOpened,
    AppBackgrounded,
    PushTapped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Page(PageRef),
    Screen(u8),
    Track(Tr),
    Identify(Ident),
    Group,
    Alias,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Signup,
    Login,
    Refresh,
    EmailChange,
}

/// One visit: a run of events from one device, interleaved with others.
#[derive(Debug)]
struct Session {
    active: bool,
    device: u32,
    person: u32,
    /// Normal (unscripted) actions left.
    remaining: u32,
    step: u32,
    pending: VecDeque<Action>,
    trigger: Option<(u32, Flow)>,
    page: PageRef,
    referrer: Referrer,
    campaign: Option<u8>,
    /// No page call yet: the first keeps the external referrer.
    fresh: bool,
    screen: u8,
    product: Option<u8>,
    cart: Vec<(u8, u8)>,
    cart_key: u64,
    checkout: bool,
    video: Option<u8>,
}

impl Session {
    fn idle() -> Session {
        Session {
            active: false,
            device: 0,
            person: 0,
            remaining: 0,
            step: 0,
            pending: VecDeque::with_capacity(8),
            trigger: None,
            page: PageRef::Static(PAGE_HOME),
            referrer: Referrer::External(0),
            campaign: None,
            fresh: true,
            screen: 0,
            product: None,
            cart: Vec::with_capacity(8),
            cart_key: 0,
            checkout: false,
            video: None,
        }
    }

    fn finished(&self) -> bool {
        self.remaining == 0 && self.pending.is_empty() && self.trigger.is_none()
    }
}

/// Union-find over identifiers (anonymousIds and userIds), used to count
/// the merges the stream implies. See [`Shape::expected_merges`].
#[derive(Debug, Default)]
struct Graph {
    parent: Vec<u32>,
    /// For roots: the person whose userId the component holds, or `NONE`.
    user: Vec<u32>,
    /// Whether the identifier already appeared in an emitted event.
    seen: Vec<bool>,
    merges: u64,
}

impl Graph {
    fn add(&mut self, user: u32) -> u32 {
        let id = self.parent.len() as u32;
        self.parent.push(id);
        self.user.push(user);
        self.seen.push(false);
        id
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let gp = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    /// Records one event carrying the given identifiers.
    fn observe(&mut self, anon: u32, user: u32) {
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

/// How an event's context and messageId look.
#[derive(Debug, Clone, Copy)]
enum Ctx {
    Web {
        device: u32,
        page: PageRef,
        referrer: Referrer,
        campaign: Option<u8>,
    },
    Mobile {
        device: u32,
    },
    Server {
        person: u32,
    },
    Bot {
        bot: u8,
        page: PageRef,
    },
}

// Attribute salts (see `rng::attr`).
const A_FIRST: u64 = 1;
const A_LAST: u64 = 2;
const A_PLACE: u64 = 3;
const A_PLAN: u64 = 4;
const A_AGE: u64 = 5;
const A_NEWSLETTER: u64 = 6;
const A_PHONE_OS: u64 = 7;
const A_DOMAIN: u64 = 8;
const A_EMAIL_NO: u64 = 9;
const A_UA: u64 = 10;
const A_IP: u64 = 11;
const A_MODEL: u64 = 12;
const A_OS_VERSION: u64 = 13;
const A_APP_VERSION: u64 = 14;
const A_AD_TRACKING: u64 = 15;
const A_AD_ID: u64 = 16;
const A_DEVICE_ID: u64 = 18;
const A_TOKEN: u64 = 20;
const A_NETWORK: u64 = 25;
const A_CARRIER: u64 = 26;
const A_INDUSTRY: u64 = 30;
const A_EMPLOYEES: u64 = 31;
const A_COMPANY_NAME: u64 = 32;
const A_COMPANY_SUFFIX: u64 = 33;
const A_COMPANY_PLAN: u64 = 34;
const A_COMPANY_SINCE: u64 = 35;
const A_METHOD: u64 = 36;
const A_SOURCE: u64 = 37;
const A_BOT_IP: u64 = 38;

/// The whole simulation state.
#[derive(Debug)]
pub(crate) struct Sim {
    pub(crate) rng: Rng,
    events: u64,
    sources: u32,
    keys: [u64; 8],
    persons: Vec<Person>,
    /// Persons with a userId (for returning users, server calls, sharing).
    users: Vec<u32>,
    devices: Vec<Device>,
    companies: Vec<u64>,
    graph: Graph,
    web: Vec<Session>,
    mobile: Vec<Session>,
    bots: [u32; 3],
    bot_pages: [u32; 3],
    email_counter: u64,
    order_counter: u64,
    /// Simulated wall clock of the current line.
    now: i64,
    /// `timestamp` of the current event (older than `now` when late).
    ts: i64,
    max_ts: Option<i64>,
    /// Index of the current line (for messageIds).
    line: u64,
    pub(crate) shape: Shape,
}

impl Sim {
    pub(crate) fn new(events: u64, seed: u64, sources: u32) -> Sim {
        let mut rng = Rng::new(seed);
        let mut keys = [0u64; 8];
        for k in &mut keys {
            *k = rng.next_u64();
        }
        let slots = (events / 1500).clamp(12, 800) as usize;
        let mut graph = Graph::default();
        let bots = [graph.add(NONE), graph.add(NONE), graph.add(NONE)];
        Sim {
            rng,
            events,
            sources: sources.max(1),
            keys,
            persons: Vec::new(),
            users: Vec::new(),
            devices: Vec::new(),
            companies: Vec::new(),
            graph,
            web: (0..slots).map(|_| Session::idle()).collect(),
            mobile: (0..slots.div_ceil(2)).map(|_| Session::idle()).collect(),
            bots,
            bot_pages: [0; 3],
            email_counter: 0,
            order_counter: 0,
            now: START_MS,
            ts: START_MS,
            max_ts: None,
            line: 0,
            shape: Shape::default(),
        }
    }

    /// Sets the clock for line `i` (monotone: each line gets its own slice
    /// of the period).
    pub(crate) fn set_clock(&mut self, i: u64) {
        let n = i128::from(self.events.max(1));
        let base = |k: u64| START_MS + (i128::from(k) * i128::from(PERIOD_MS) / n) as i64;
        let (lo, hi) = (base(i), base(i + 1));
        self.now = lo + self.rng.below((hi - lo).max(1) as u64) as i64;
        self.line = i;
    }

    /// Generates one new (non-duplicate) event into `j`.
    pub(crate) fn step(&mut self, j: &mut Json) -> EventType {
        self.ts = self.now;
        if let Some(max) = self.max_ts {
            if self.rng.chance(LATE_SHARE) {
                // Offline queue flushed late / a slow retry: 60% within ten
                // minutes, 30% within six hours, the rest up to three days.
                let delta = match self.rng.below(10) {
                    0..=5 => self.rng.range(1_000, 600_000),
                    6..=8 => self.rng.range(600_000, 21_600_000),
                    _ => self.rng.range(21_600_000, 259_200_000),
                };
                self.ts = max.min(self.now) - delta as i64;
            }
        }
        if self.rng.chance(BOT_SHARE) {
            return self.bot_page(j);
        }
        // Backend calls need known users; before the first sign-up their
        // share goes to the apps.
        let mobile = self.rng.chance(SERVER_SHARE + MOBILE_SHARE);
        if mobile
            && !self.users.is_empty()
            && self
                .rng
                .chance(SERVER_SHARE / (SERVER_SHARE + MOBILE_SHARE))
        {
            return self.server_event(j);
        }
        let slot = if mobile {
            self.rng.index(self.mobile.len())
        } else {
            self.rng.index(self.web.len())
        };
        if !self.session(mobile, slot).active {
            self.start_session(mobile, slot);
        }
        let action = self.next_action(mobile, slot);
        let ty = self.perform(mobile, slot, action, j);
        let s = self.session(mobile, slot);
        if s.finished() {
            s.active = false;
            let d = s.device;
            self.devices[d as usize].busy = false;
        }
        self.shape.expected_merges = self.graph.merges;
        ty
    }

    fn session(&mut self, mobile: bool, slot: usize) -> &mut Session {
        if mobile {
            &mut self.mobile[slot]
        } else {
            &mut self.web[slot]
        }
    }

    // ------------------------------------------------------------------
    // Population
    // ------------------------------------------------------------------

    fn new_person(&mut self) -> u32 {
        let key = self.rng.next_u64();
        let will_sign_up = self.rng.chance(WILL_SIGN_UP);
        self.persons.push(Person {
            key,
            user_node: NONE,
            signed_up_at: 0,
            email_no: 0,
            email_emitted: false,
            user_emitted: false,
            will_sign_up,
            company: NONE,
            sessions: 0,
            orders: 0,
            devices: Vec::new(),
        });
        (self.persons.len() - 1) as u32
    }

    fn new_device(&mut self, owner: u32, platform: Platform) -> u32 {
        let key = self.rng.next_u64();
        let channel = if platform == Platform::Web { 0 } else { 1 };
        let source = source_for(channel, self.sources, attr(key, A_SOURCE));
        let anon = self.graph.add(NONE);
        self.devices.push(Device {
            key,
            platform,
            owner,
            anon,
            logged_in: NONE,
            source,
            busy: false,
        });
        (self.devices.len() - 1) as u32
    }

    fn next_email(&mut self, key: u64) -> u64 {
        self.email_counter += 1;
        // Unique: each counter value owns its own block of ten numbers.
        self.email_counter * 10 + attr(key ^ self.email_counter, A_EMAIL_NO) % 10
    }

    /// Gives `p` a userId (sign-up), logged in on `device`.
    fn ensure_signed_up(&mut self, p: u32, device: u32) {
        if self.persons[p as usize].user_node != NONE {
            return;
        }
        let node = self.graph.add(p);
        let key = self.persons[p as usize].key;
        let email_no = self.next_email(key);
        let person = &mut self.persons[p as usize];
        person.user_node = node;
        person.signed_up_at = self.ts;
        person.email_no = email_no;
        self.users.push(p);
        self.devices[device as usize].logged_in = p;
    }

    /// Some new users work for a company (B2B accounts, group calls).
    fn maybe_join_company(&mut self, p: u32) {
        if self.persons[p as usize].company != NONE || !self.rng.chance(0.45) {
            return;
        }
        let c = if !self.companies.is_empty() && self.rng.chance(0.6) {
            self.rng.index(self.companies.len()) as u32
        } else {
            self.companies.push(self.rng.next_u64());
            (self.companies.len() - 1) as u32
        };
        self.persons[p as usize].company = c;
    }

    fn start_session(&mut self, mobile: bool, slot: usize) {
        // The site opens to an audience: while few visitors are known, most
        // sessions bring new ones (1.0 at the start, → NEW_VISITOR).
        let known = self.persons.len() as f64;
        let p_new = NEW_VISITOR + (1.0 - NEW_VISITOR) * 50.0 / (50.0 + known);
        let users = self.users.len() as f64;
        let p_user =
            users * RETURNING_USER_WEIGHT / (users * RETURNING_USER_WEIGHT + known - users);
        let mut p = if self.persons.is_empty() || self.rng.chance(p_new) {
            self.new_person()
        } else if self.rng.chance(p_user) {
            self.users[self.rng.index(self.users.len())]
        } else {
            self.rng.index(self.persons.len()) as u32
        };
        if self.persons[p as usize]
            .devices
            .iter()
            .any(|&d| self.devices[d as usize].busy)
        {
            // Already in a session elsewhere: this one is someone new.
            p = self.new_person();
        }
        self.persons[p as usize].sessions += 1;
        let pkey = self.persons[p as usize].key;
        let platform = if !mobile {
            Platform::Web
        } else if attr(pkey, A_PHONE_OS) % 100 < 55 {
            Platform::Ios
        } else {
            Platform::Android
        };
        let existing = self.persons[p as usize]
            .devices
            .iter()
            .rev()
            .copied()
            .find(|&d| self.devices[d as usize].platform == platform);
        let d = match existing {
            Some(d) if self.rng.chance(SAME_DEVICE) => d,
            _ => {
                let shared = if !mobile
                    && self.persons[p as usize].user_node != NONE
                    && self.rng.chance(SHARED_DEVICE)
                {
                    self.shared_device(p)
                } else {
                    None
                };
                let d = match shared {
                    Some(d) => d,
                    None => self.new_device(p, platform),
                };
                self.persons[p as usize].devices.push(d);
                d
            }
        };
        self.devices[d as usize].busy = true;
        let anon = self.devices[d as usize].anon;
        let reset = if mobile {
            APP_REINSTALLED
        } else {
            COOKIE_CLEARED
        };
        if self.graph.seen[anon as usize] && self.rng.chance(reset) {
            // Cookie cleared / app reinstalled: new anonymousId, logged out.
            self.devices[d as usize].anon = self.graph.add(NONE);
            self.devices[d as usize].logged_in = NONE;
        }

        let len = self.rng.geometric(0.87, 60);
        let person = &self.persons[p as usize];
        let logged_in = self.devices[d as usize].logged_in;
        let trigger = if person.user_node != NONE {
            if logged_in == p {
                if self.rng.chance(0.03) {
                    Some((self.rng.below(u64::from(len)) as u32, Flow::EmailChange))
                } else if self.rng.chance(0.7) {
                    Some((0, Flow::Refresh))
                } else {
                    None
                }
            } else if self.rng.chance(0.8) {
                let at = if self.rng.chance(0.8) {
                    1 + self.rng.below(u64::from(len.min(5))) as u32
                } else {
                    0
                };
                Some((at, Flow::Login))
            } else {
                None
            }
        } else if person.will_sign_up && (person.sessions >= 3 || self.rng.chance(0.5)) {
            Some((1 + self.rng.below(u64::from(len)) as u32, Flow::Signup))
        } else {
            None
        };

        let landing = self.landing_page();
        let external = Referrer::External(self.rng.index(REFERRERS.len()) as u8);
        let campaign = if self.rng.chance(0.22) {
            Some(self.rng.index(CAMPAIGNS.len()) as u8)
        } else {
            None
        };
        let referrer = campaign.map_or(external, Referrer::Campaign);
        let cart_key = self.rng.next_u64();
        let s = self.session(mobile, slot);
        s.active = true;
        s.device = d;
        s.person = p;
        s.remaining = len;
        s.step = 0;
        s.pending.clear();
        s.trigger = trigger;
        s.page = landing;
        s.referrer = referrer;
        s.campaign = campaign;
        s.fresh = true;
        s.screen = 0;
        s.product = None;
        s.cart.clear();
        s.cart_key = cart_key;
        s.checkout = false;
        s.video = None;
    }

    /// A web device of another known user (family computer, office PC).
    fn shared_device(&mut self, p: u32) -> Option<u32> {
        let q = self.users[self.rng.index(self.users.len())];
        if q == p {
            return None;
        }
        self.persons[q as usize].devices.iter().copied().find(|&d| {
            self.devices[d as usize].platform == Platform::Web && !self.devices[d as usize].busy
        })
    }

    fn landing_page(&mut self) -> PageRef {
        match self.rng.weighted(&[35, 30, 15, 10, 10]) {
            0 => PageRef::Static(PAGE_HOME),
            1 => PageRef::Product(self.rng.index(PRODUCTS.len()) as u8),
            2 => PageRef::Category(self.rng.index(PRODUCT_CATEGORIES.len()) as u8),
            3 => PageRef::Blog(self.rng.index(BLOG.len()) as u8),
            _ => PageRef::Static(*self.rng.pick(&[1u8, 3, 4])),
        }
    }

    // ------------------------------------------------------------------
    // Session behaviour
    // ------------------------------------------------------------------

    fn next_action(&mut self, mobile: bool, slot: usize) -> Action {
        if let Some(a) = self.session(mobile, slot).pending.pop_front() {
            return a;
        }
        let s = self.session(mobile, slot);
        if let Some((at, flow)) = s.trigger {
            if s.step >= at {
                s.trigger = None;
                self.expand_flow(mobile, slot, flow);
                if let Some(a) = self.session(mobile, slot).pending.pop_front() {
                    return a;
                }
            }
        }
        let s = self.session(mobile, slot);
        s.remaining = s.remaining.saturating_sub(1);
        let a = if mobile {
            self.mobile_action(slot)
        } else {
            self.web_action(slot)
        };
        self.session(mobile, slot).step += 1;
        a
    }

    fn expand_flow(&mut self, mobile: bool, slot: usize, flow: Flow) {
        let s = self.session(mobile, slot);
        let (p, d) = (s.person, s.device);
        let signed_up = self.persons[p as usize].user_node != NONE;
        let logged_in = self.devices[d as usize].logged_in == p;
        // The plan was made at session start; another session of the same
        // visitor may have signed up or logged in since.
        let flow = match flow {
            Flow::Signup if signed_up && logged_in => return,
            Flow::Signup if signed_up => Flow::Login,
            Flow::Login if logged_in => return,
            f => f,
        };
        let mut actions: [Option<Action>; 5] = [None; 5];
        match flow {
            Flow::Signup => {
                self.maybe_join_company(p);
                let alias = self.rng.chance(if mobile { 0.35 } else { 0.08 });
                actions[0] = Some(if mobile {
                    Action::Screen(8)
                } else {
                    Action::Page(PageRef::Static(PAGE_SIGNUP))
                });
                if alias {
                    actions[1] = Some(Action::Alias);
                }
                actions[2] = Some(Action::Identify(Ident::Signup));
                actions[3] = Some(Action::Track(Tr::SignedUp));
                if self.persons[p as usize].company != NONE {
                    actions[4] = Some(Action::Group);
                }
            }
            Flow::Login => {
                if !mobile {
                    actions[0] = Some(Action::Page(PageRef::Static(PAGE_LOGIN)));
                }
                actions[1] = Some(Action::Identify(Ident::Login));
                actions[2] = Some(Action::Track(Tr::SignedIn));
                if self.persons[p as usize].company != NONE && self.rng.chance(0.5) {
                    actions[3] = Some(Action::Group);
                }
            }
            Flow::Refresh => {
                actions[0] = Some(Action::Identify(Ident::Refresh));
                if self.persons[p as usize].company != NONE && self.rng.chance(0.6) {
                    actions[1] = Some(Action::Group);
                }
            }
            Flow::EmailChange => {
                actions[0] = Some(if mobile {
                    Action::Screen(10)
                } else {
                    Action::Page(PageRef::Static(10))
                });
                actions[1] = Some(Action::Identify(Ident::EmailChange));
            }
        }
        let s = self.session(mobile, slot);
        s.pending.extend(actions.into_iter().flatten());
    }

    /// Weighted choice of a shopping track call given the session state.
    fn shopping_track(&mut self, mobile: bool, slot: usize) -> Tr {
        let s = if mobile {
            &self.mobile[slot]
        } else {
            &self.web[slot]
        };
        let on_product = if mobile {
            s.screen == SCREEN_PRODUCT
        } else {
            matches!(s.page, PageRef::Product(_))
        };
        let cart = !s.cart.is_empty();
        let w = |c: bool, w: u32| if c { w } else { 0 };
        let weights = [
            w(on_product && s.product.is_some(), 10), // ProductViewed
            w(s.product.is_some() && s.cart.len() < 6, 16), // ProductAdded
            w(cart, 2),                               // ProductRemoved
            w(cart, 6),                               // CartViewed
            w(cart && !s.checkout, 6),                // CheckoutStarted
            w(s.checkout, 9),                         // OrderCompleted
            w(cart, 2),                               // CouponApplied
            8,                                        // ProductListViewed
            6,                                        // ProductsSearched
            w(!mobile, 4),                            // VideoStarted
            w(s.video.is_some(), 6),                  // VideoCompleted
            w(!mobile, 9),                            // ButtonClicked
        ];
        const TRACKS: [Tr; 12] = [
            Tr::ProductViewed,
            Tr::ProductAdded,
            Tr::ProductRemoved,
            Tr::CartViewed,
            Tr::CheckoutStarted,
            Tr::OrderCompleted,
            Tr::CouponApplied,
            Tr::ProductListViewed,
            Tr::ProductsSearched,
            Tr::VideoStarted,
            Tr::VideoCompleted,
            Tr::ButtonClicked,
        ];
        TRACKS[self.rng.weighted(&weights)]
    }

    fn web_action(&mut self, slot: usize) -> Action {
        if self.web[slot].step == 0 {
            let landing = self.web[slot].page;
            self.follow_page(slot, landing);
            return Action::Page(landing);
        }
        if self.rng.chance(0.7) {
            let cart = !self.web[slot].cart.is_empty();
            let next = match self
                .rng
                .weighted(&[40, 14, 8, 18, 5, if cart { 8 } else { 0 }])
            {
                0 => PageRef::Product(self.rng.index(PRODUCTS.len()) as u8),
                1 => PageRef::Category(self.rng.index(PRODUCT_CATEGORIES.len()) as u8),
                2 => PageRef::Search(self.rng.index(SEARCHES.len()) as u8),
                3 => PageRef::Static(*self.rng.pick(&[0u8, 1, 2, 3, 4, 10, 11, 12, 13, 14])),
                4 => PageRef::Blog(self.rng.index(BLOG.len()) as u8),
                _ => PageRef::Static(PAGE_CART),
            };
            self.follow_page(slot, next);
            // Single-page-app route changes re-identify logged-in users.
            let (d, p) = (self.web[slot].device, self.web[slot].person);
            if self.devices[d as usize].logged_in == p && self.rng.chance(0.12) {
                self.web[slot]
                    .pending
                    .push_back(Action::Identify(Ident::Refresh));
            }
            return Action::Page(next);
        }
        let t = self.shopping_track(false, slot);
        self.follow_track(false, slot, t);
        Action::Track(t)
    }

    /// Queues the track call that usually accompanies a page view.
    fn follow_page(&mut self, slot: usize, page: PageRef) {
        let follow = match page {
            PageRef::Product(_) if self.rng.chance(0.6) => Some(Tr::ProductViewed),
            PageRef::Search(_) if self.rng.chance(0.7) => Some(Tr::ProductsSearched),
            PageRef::Category(_) if self.rng.chance(0.3) => Some(Tr::ProductListViewed),
            PageRef::Static(PAGE_CART) if self.rng.chance(0.7) => Some(Tr::CartViewed),
            _ => None,
        };
        if let Some(t) = follow {
            self.web[slot].pending.push_back(Action::Track(t));
        }
    }

    /// Queues the page/screen that follows some track calls.
    fn follow_track(&mut self, mobile: bool, slot: usize, t: Tr) {
        let next = match (t, mobile) {
            (Tr::CheckoutStarted, false) => Some(Action::Page(PageRef::Static(PAGE_CHECKOUT))),
            (Tr::OrderCompleted, false) => Some(Action::Page(PageRef::Static(PAGE_CONFIRMATION))),
            (Tr::CheckoutStarted, true) => Some(Action::Screen(5)),
            (Tr::OrderCompleted, true) => Some(Action::Screen(6)),
            _ => None,
        };
        if let Some(a) = next {
            self.session(mobile, slot).pending.push_back(a);
        }
    }

    fn mobile_action(&mut self, slot: usize) -> Action {
        let s = &self.mobile[slot];
        if s.step == 0 {
            let d = s.device;
            let fresh_install = !self.graph.seen[self.devices[d as usize].anon as usize];
            let first = if fresh_install {
                self.mobile[slot]
                    .pending
                    .push_back(Action::Track(Tr::AppOpened));
                Tr::AppInstalled
            } else if self.rng.chance(0.12) {
                self.mobile[slot]
                    .pending
                    .push_back(Action::Track(Tr::AppOpened));
                Tr::PushTapped
            } else {
                Tr::AppOpened
            };
            self.mobile[slot].pending.push_back(Action::Screen(0));
            return Action::Track(first);
        }
        let a = if self.rng.chance(0.68) {
            let cart = !self.mobile[slot].cart.is_empty();
            let screen = [0u8, 1, 2, 3, 4, 7, 8, 9, 10][self.rng.weighted(&[
                10,
                8,
                12,
                30,
                if cart { 8 } else { 0 },
                4,
                3,
                3,
                2,
            ])];
            let follow = match screen {
                1 if self.rng.chance(0.7) => Some(Tr::ProductsSearched),
                2 if self.rng.chance(0.3) => Some(Tr::ProductListViewed),
                SCREEN_PRODUCT if self.rng.chance(0.6) => Some(Tr::ProductViewed),
                4 if self.rng.chance(0.7) => Some(Tr::CartViewed),
                _ => None,
            };
            if let Some(t) = follow {
                self.mobile[slot].pending.push_back(Action::Track(t));
            }
            Action::Screen(screen)
        } else {
            let t = self.shopping_track(true, slot);
            self.follow_track(true, slot, t);
            Action::Track(t)
        };
        if self.mobile[slot].remaining == 0 && self.rng.chance(0.5) {
            self.mobile[slot]
                .pending
                .push_back(Action::Track(Tr::AppBackgrounded));
        }
        a
    }

    // ------------------------------------------------------------------
    // Emission
    // ------------------------------------------------------------------

    fn perform(&mut self, mobile: bool, slot: usize, a: Action, j: &mut Json) -> EventType {
        // State changes that the event itself reflects.
        match a {
            Action::Page(p) => {
                let product = match p {
                    PageRef::Product(i) => Some(i),
                    _ => None,
                };
                let s = self.session(mobile, slot);
                if !s.fresh {
                    s.referrer = Referrer::Internal(s.page);
                    s.campaign = None;
                }
                s.fresh = false;
                s.page = p;
                if product.is_some() {
                    s.product = product;
                }
            }
            Action::Screen(i) => {
                let product = (i == SCREEN_PRODUCT).then(|| self.rng.index(PRODUCTS.len()) as u8);
                let s = self.session(mobile, slot);
                s.screen = i;
                if product.is_some() {
                    s.product = product;
                }
            }
            _ => {}
        }
        let s = if mobile {
            &self.mobile[slot]
        } else {
            &self.web[slot]
        };
        let (d, p) = (s.device, s.person);
        let ctx = if mobile {
            Ctx::Mobile { device: d }
        } else {
            Ctx::Web {
                device: d,
                page: s.page,
                referrer: s.referrer,
                campaign: s.campaign,
            }
        };
        match a {
            Action::Page(page) => {
                j.begin_obj();
                j.kv_str("type", "page");
                let (name, category) = page_name(page);
                j.kv_str("name", name);
                j.kv_str("category", category);
                j.obj("properties");
                let campaign = if let Ctx::Web { campaign, .. } = ctx {
                    campaign
                } else {
                    None
                };
                let referrer = if let Ctx::Web { referrer, .. } = ctx {
                    referrer
                } else {
                    Referrer::External(0)
                };
                write_page_fields(j, page, referrer, campaign);
                if let PageRef::Product(i) = page {
                    j.kv_str("product_id", PRODUCTS[usize::from(i)].id);
                }
                j.end_obj();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Page
            }
            Action::Screen(i) => {
                let (name, category) = SCREENS[usize::from(i)];
                j.begin_obj();
                j.kv_str("type", "screen");
                j.kv_str("name", name);
                j.kv_str("category", category);
                j.obj("properties");
                j.kv_str("name", name);
                j.kv_str("category", category);
                if i == SCREEN_PRODUCT {
                    if let Some(pr) = self.mobile[slot].product {
                        let pr = &PRODUCTS[usize::from(pr)];
                        j.kv_str("product_id", pr.id);
                        j.kv_str("product_name", pr.name);
                    }
                }
                j.kv_u64("load_time_ms", 80 + self.rng.below(900));
                j.end_obj();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Screen
            }
            Action::Track(t) => {
                j.begin_obj();
                j.kv_str("type", "track");
                self.track_body(j, mobile, slot, t);
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Track
            }
            Action::Identify(kind) => {
                match kind {
                    Ident::Signup => self.ensure_signed_up(p, d),
                    Ident::Login | Ident::Refresh => {
                        // (Login is also how a shared device changes hands.)
                        self.devices[d as usize].logged_in = p;
                    }
                    Ident::EmailChange => {
                        self.devices[d as usize].logged_in = p;
                        let key = self.persons[p as usize].key;
                        let no = self.next_email(key);
                        let person = &mut self.persons[p as usize];
                        person.email_no = no;
                        person.email_emitted = false;
                    }
                }
                j.begin_obj();
                j.kv_str("type", "identify");
                j.obj("traits");
                self.identify_traits(j, p, kind);
                j.end_obj();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Identify
            }
            Action::Group => {
                let c = self.persons[p as usize].company;
                j.begin_obj();
                j.kv_str("type", "group");
                self.group_body(j, c);
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Group
            }
            Action::Alias => {
                self.ensure_signed_up(p, d);
                let anon = self.devices[d as usize].anon;
                j.begin_obj();
                j.kv_str("type", "alias");
                j.key("previousId");
                j.open_str();
                self.anon_id(j, anon);
                j.close_str();
                self.device_ids(j, d);
                self.finish(j, ctx);
                EventType::Alias
            }
        }
    }

    /// A backend call (source 3): identify, group or a billing/fulfilment
    /// track, keyed by userId, with the anonymousId only when the backend
    /// has the visitor's cookie.
    fn server_event(&mut self, j: &mut Json) -> EventType {
        let p = self.users[self.rng.index(self.users.len())];
        let anon = if self.rng.chance(0.35) {
            self.persons[p as usize]
                .devices
                .iter()
                .rev()
                .map(|&d| &self.devices[d as usize])
                .find(|d| d.logged_in == p)
                .map_or(NONE, |d| d.anon)
        } else {
            NONE
        };
        let company = self.persons[p as usize].company;
        let ty = match (self.rng.below(100), company != NONE) {
            (0..=29, true) | (0..=49, false) => EventType::Identify,
            (30..=74, true) => EventType::Group,
            _ => EventType::Track,
        };
        j.begin_obj();
        j.kv_str("type", ty.as_str());
        match ty {
            EventType::Identify => {
                j.obj("traits");
                self.server_traits(j, p);
                j.end_obj();
            }
            EventType::Group => self.group_body(j, company),
            _ => self.server_track(j, p),
        }
        self.ids(j, anon, p);
        self.finish(j, Ctx::Server { person: p });
        self.shape.expected_merges = self.graph.merges;
        ty
    }

    fn bot_page(&mut self, j: &mut Json) -> EventType {
        let b = [0u8, 0, 0, 1, 1, 2][self.rng.index(6)];
        let n = self.bot_pages[usize::from(b)];
        self.bot_pages[usize::from(b)] += 1;
        // Crawlers walk the catalogue systematically.
        let page = match n % 4 {
            0 => PageRef::Product((n / 4 % PRODUCTS.len() as u32) as u8),
            1 => PageRef::Category((n / 4 % PRODUCT_CATEGORIES.len() as u32) as u8),
            2 => PageRef::Blog((n / 4 % BLOG.len() as u32) as u8),
            _ => PageRef::Static((n / 4 % PAGES.len() as u32) as u8),
        };
        j.begin_obj();
        j.kv_str("type", "page");
        let (name, category) = page_name(page);
        j.kv_str("name", name);
        j.kv_str("category", category);
        j.obj("properties");
        write_page_fields(j, page, Referrer::External(0), None);
        j.end_obj();
        self.ids(j, self.bots[usize::from(b)], NONE);
        self.finish(j, Ctx::Bot { bot: b, page });
        self.shape.expected_merges = self.graph.merges;
        EventType::Page
    }

    /// anonymousId + userId of a device's current state.
    fn device_ids(&mut self, j: &mut Json, d: u32) {
        let dev = &self.devices[d as usize];
        let (anon, user) = (dev.anon, dev.logged_in);
        self.ids(j, anon, user);
    }

    fn ids(&mut self, j: &mut Json, anon: u32, person: u32) {
        if anon != NONE {
            j.key("anonymousId");
            j.open_str();
            self.anon_id(j, anon);
            j.close_str();
            if !self.graph.seen[anon as usize] {
                self.shape.distinct_anonymous_ids += 1;
            }
        }
        let mut user_node = NONE;
        if person != NONE && self.persons[person as usize].user_node != NONE {
            user_node = self.persons[person as usize].user_node;
            j.key("userId");
            j.open_str();
            self.user_id(j, person);
            j.close_str();
            let pr = &mut self.persons[person as usize];
            if !pr.user_emitted {
                pr.user_emitted = true;
                self.shape.distinct_user_ids += 1;
            }
        }
        self.graph.observe(anon, user_node);
    }

    fn anon_id(&self, j: &mut Json, node: u32) {
        let n = u64::from(node);
        j.uuid(mix64(self.keys[0] ^ n), mix64(self.keys[1] ^ n), false);
    }

    fn user_id(&self, j: &mut Json, p: u32) {
        j.raw("usr_");
        j.base36(mix64(self.keys[2] ^ u64::from(p)));
    }

    /// context, messageId, timestamp, sentAt, writeKey and the closing brace.
    fn finish(&mut self, j: &mut Json, ctx: Ctx) {
        let source = match ctx {
            Ctx::Web { device, .. } | Ctx::Mobile { device } => {
                self.devices[device as usize].source
            }
            // Backend calls pick a server-side source per user (stable).
            Ctx::Server { person } => source_for(
                2,
                self.sources,
                attr(self.persons[person as usize].key, A_SOURCE),
            ),
            Ctx::Bot { .. } => source_for(0, self.sources, 0),
        };
        match ctx {
            Ctx::Web {
                device,
                page,
                referrer,
                campaign,
            } => self.web_context(j, device, page, referrer, campaign),
            Ctx::Mobile { device } => self.mobile_context(j, device),
            Ctx::Server { .. } => {
                j.obj("context");
                j.obj("library");
                j.kv_str("name", "analytics-node");
                j.kv_str("version", NODE_VERSION);
                j.end_obj();
                j.end_obj();
            }
            Ctx::Bot { bot, page } => self.bot_context(j, bot, page),
        }
        self.tail(j, ctx, source);
    }

    fn tail(&mut self, j: &mut Json, ctx: Ctx, source: u32) {
        let (a, b) = (
            mix64(self.keys[3] ^ self.line),
            mix64(self.keys[4] ^ self.line),
        );
        j.key("messageId");
        j.open_str();
        match ctx {
            Ctx::Web { .. } | Ctx::Bot { .. } => {
                j.raw("ajs-next-");
                j.hex(a, 16);
                j.hex(b, 16);
            }
            Ctx::Mobile { device } => {
                let upper = self.devices[device as usize].platform == Platform::Ios;
                j.uuid(a, b, upper);
            }
            Ctx::Server { .. } => {
                j.raw("node-");
                j.uuid(a, b, false);
            }
        }
        j.close_str();
        j.kv_ts("timestamp", self.ts);
        let delay = match ctx {
            Ctx::Mobile { .. } => self.rng.range(200, 30_000),
            _ => self.rng.range(3, 900),
        };
        let sent = self.now.max(self.ts) + delay as i64;
        j.kv_ts("sentAt", sent);
        j.key("writeKey");
        j.open_str();
        j.raw("wk_source_");
        j.digits(u64::from(source));
        j.close_str();
        j.end_obj();
        match self.max_ts {
            Some(max) if self.ts < max => self.shape.late_events += 1,
            _ => {}
        }
        self.max_ts = Some(self.max_ts.map_or(self.ts, |m| m.max(self.ts)));
    }

    fn web_context(
        &self,
        j: &mut Json,
        d: u32,
        page: PageRef,
        referrer: Referrer,
        campaign: Option<u8>,
    ) {
        let dev = &self.devices[d as usize];
        let place = PLACES[attr_pick(self.persons[dev.owner as usize].key, A_PLACE, PLACES.len())];
        j.obj("context");
        if let Some(c) = campaign {
            let (name, source, medium, ..) = CAMPAIGNS[usize::from(c)];
            j.obj("campaign");
            j.kv_str("name", name);
            j.kv_str("source", source);
            j.kv_str("medium", medium);
            j.end_obj();
        }
        j.key("ip");
        write_ip(j, attr(dev.key, A_IP));
        j.obj("library");
        j.kv_str("name", "analytics.js");
        j.kv_str("version", AJS_VERSION);
        j.end_obj();
        j.kv_str("locale", place.2);
        j.obj("page");
        write_page_fields(j, page, referrer, campaign);
        j.end_obj();
        j.kv_str("timezone", place.3);
        j.kv_str(
            "userAgent",
            USER_AGENTS[attr_pick(dev.key, A_UA, USER_AGENTS.len())],
        );
        j.end_obj();
    }

    fn bot_context(&self, j: &mut Json, b: u8, page: PageRef) {
        j.obj("context");
        j.key("ip");
        write_ip(j, attr(u64::from(b), A_BOT_IP));
        j.obj("library");
        j.kv_str("name", "analytics.js");
        j.kv_str("version", AJS_VERSION);
        j.end_obj();
        j.kv_str("locale", "en-US");
        j.obj("page");
        write_page_fields(j, page, Referrer::External(0), None);
        j.end_obj();
        j.kv_str("userAgent", BOT_AGENTS[usize::from(b)]);
        j.end_obj();
    }

    fn mobile_context(&self, j: &mut Json, d: u32) {
        let dev = &self.devices[d as usize];
        let k = dev.key;
        let ios = dev.platform == Platform::Ios;
        let place = PLACES[attr_pick(self.persons[dev.owner as usize].key, A_PLACE, PLACES.len())];
        let (app_version, build) = APP_VERSIONS[attr_pick(k, A_APP_VERSION, APP_VERSIONS.len())];
        j.obj("context");
        j.obj("app");
        j.kv_str("build", build);
        j.kv_str("name", APP_NAME);
        j.kv_str(
            "namespace",
            if ios {
                APP_NAMESPACE_IOS
            } else {
                APP_NAMESPACE_ANDROID
            },
        );
        j.kv_str("version", app_version);
        j.end_obj();
        j.obj("device");
        let tracking = attr(k, A_AD_TRACKING) % 100 < if ios { 30 } else { 85 };
        j.kv_bool("adTrackingEnabled", tracking);
        j.key("advertisingId");
        if tracking {
            j.open_str();
            j.uuid(attr(k, A_AD_ID), attr(k, A_AD_ID + 1), ios);
            j.close_str();
        } else {
            j.str("00000000-0000-0000-0000-000000000000");
        }
        j.key("id");
        j.open_str();
        if ios {
            j.uuid(attr(k, A_DEVICE_ID), attr(k, A_DEVICE_ID + 1), true);
        } else {
            j.hex(attr(k, A_DEVICE_ID), 16);
        }
        j.close_str();
        let (manufacturer, model, name, w, h, density) = if ios {
            let (model, name, w, h, dpr) = IOS_DEVICES[attr_pick(k, A_MODEL, IOS_DEVICES.len())];
            ("Apple", model, name, w, h, dpr)
        } else {
            let (m, model, w, h, dpr) =
                ANDROID_DEVICES[attr_pick(k, A_MODEL, ANDROID_DEVICES.len())];
            (m, model, model, w, h, dpr)
        };
        j.kv_str("manufacturer", manufacturer);
        j.kv_str("model", model);
        j.kv_str("name", name);
        if attr(k, A_TOKEN) % 100 < 65 {
            j.key("token");
            j.open_str();
            if ios {
                for s in 1..=4 {
                    j.hex(attr(k, A_TOKEN + s), 16);
                }
            } else {
                j.base36(attr(k, A_TOKEN + 1));
                j.raw(":APA91b");
                j.hex(attr(k, A_TOKEN + 2), 16);
                j.hex(attr(k, A_TOKEN + 3), 16);
            }
            j.close_str();
        }
        j.kv_str("type", if ios { "ios" } else { "android" });
        j.end_obj();
        j.key("ip");
        write_ip(j, attr(k, A_IP));
        j.obj("library");
        j.kv_str(
            "name",
            if ios {
                "analytics-ios"
            } else {
                "analytics-android"
            },
        );
        j.kv_str(
            "version",
            if ios {
                IOS_LIB_VERSION
            } else {
                ANDROID_LIB_VERSION
            },
        );
        j.end_obj();
        j.kv_str("locale", place.2);
        j.obj("network");
        let wifi = attr(k ^ (self.line >> 6), A_NETWORK) % 100 < 70;
        j.kv_str("carrier", CARRIERS[attr_pick(k, A_CARRIER, CARRIERS.len())]);
        j.kv_bool("cellular", !wifi);
        j.kv_bool("wifi", wifi);
        j.end_obj();
        j.obj("os");
        if ios {
            j.kv_str("name", "iOS");
            j.kv_str(
                "version",
                IOS_VERSIONS[attr_pick(k, A_OS_VERSION, IOS_VERSIONS.len())],
            );
        } else {
            j.kv_str("name", "Android");
            j.kv_str(
                "version",
                ANDROID_VERSIONS[attr_pick(k, A_OS_VERSION, ANDROID_VERSIONS.len())],
            );
        }
        j.end_obj();
        j.obj("screen");
        j.kv_u64("density", density);
        j.kv_u64("height", h);
        j.kv_u64("width", w);
        j.end_obj();
        j.kv_str("timezone", place.3);
        j.end_obj();
    }

    fn write_email(&self, j: &mut Json, p: u32) {
        let person = &self.persons[p as usize];
        let k = person.key;
        j.open_str();
        j.raw(FIRST_NAMES[attr_pick(k, A_FIRST, FIRST_NAMES.len())].1);
        j.raw(".");
        j.raw(LAST_NAMES[attr_pick(k, A_LAST, LAST_NAMES.len())].1);
        j.digits(person.email_no);
        j.raw("@");
        j.raw(EMAIL_DOMAINS[attr_pick(k ^ person.email_no, A_DOMAIN, EMAIL_DOMAINS.len())]);
        j.close_str();
    }

    fn email_trait(&mut self, j: &mut Json, p: u32) {
        j.key("email");
        self.write_email(j, p);
        let person = &mut self.persons[p as usize];
        if !person.email_emitted {
            person.email_emitted = true;
            self.shape.distinct_emails += 1;
        }
    }

    fn identify_traits(&mut self, j: &mut Json, p: u32, kind: Ident) {
        let k = self.persons[p as usize].key;
        let first = FIRST_NAMES[attr_pick(k, A_FIRST, FIRST_NAMES.len())].0;
        let last = LAST_NAMES[attr_pick(k, A_LAST, LAST_NAMES.len())].0;
        let place = PLACES[attr_pick(k, A_PLACE, PLACES.len())];
        let plan = PLANS[attr_pick(k, A_PLAN, PLANS.len())];
        self.email_trait(j, p);
        if kind == Ident::EmailChange {
            j.kv_bool("email_verified", false);
            j.kv_ts("email_changed_at", self.ts);
            return;
        }
        j.key("name");
        j.str_cat(&[first, " ", last]);
        j.kv_str("plan", plan);
        if kind == Ident::Refresh {
            return;
        }
        j.kv_str("first_name", first);
        j.kv_str("last_name", last);
        j.kv_ts("createdAt", self.persons[p as usize].signed_up_at);
        j.obj("address");
        j.kv_str("city", place.0);
        j.kv_str("country", place.1);
        j.end_obj();
        if kind == Ident::Signup {
            j.kv_u64("age", 18 + attr(k, A_AGE) % 52);
            j.kv_bool("newsletter", attr(k, A_NEWSLETTER) & 1 == 1);
            j.kv_str(
                "signup_method",
                SIGNUP_METHODS[attr_pick(k, A_METHOD, SIGNUP_METHODS.len())],
            );
        } else {
            j.kv_ts("last_login", self.ts);
        }
    }

    fn server_traits(&mut self, j: &mut Json, p: u32) {
        let k = self.persons[p as usize].key;
        self.email_trait(j, p);
        let person = &self.persons[p as usize];
        j.kv_str("plan", PLANS[attr_pick(k, A_PLAN, PLANS.len())]);
        j.kv_ts("createdAt", person.signed_up_at);
        let orders = u64::from(person.orders);
        j.kv_u64("orders_count", orders);
        j.kv_cents("lifetime_value", orders * (2_000 + attr(k, 40) % 9_000));
        if orders > 0 {
            j.kv_ts(
                "last_order_at",
                self.ts - self.rng.range(3_600_000, 864_000_000) as i64,
            );
        }
        j.kv_bool("is_vip", orders >= 3);
        j.arr("tags");
        for (i, tag) in SERVER_TAGS.iter().enumerate() {
            if attr(k, 41 + i as u64).is_multiple_of(4) {
                j.str(tag);
            }
        }
        j.end_arr();
    }

    fn group_body(&mut self, j: &mut Json, c: u32) {
        let key = self.companies[c as usize];
        j.key("groupId");
        j.open_str();
        j.raw("grp_");
        j.base36(mix64(self.keys[5] ^ u64::from(c)));
        j.close_str();
        j.obj("traits");
        j.key("name");
        j.str_cat(&[
            COMPANY_PREFIX[attr_pick(key, A_COMPANY_NAME, COMPANY_PREFIX.len())],
            " ",
            COMPANY_SUFFIX[attr_pick(key, A_COMPANY_SUFFIX, COMPANY_SUFFIX.len())],
        ]);
        j.kv_str(
            "industry",
            INDUSTRIES[attr_pick(key, A_INDUSTRY, INDUSTRIES.len())],
        );
        let sizes = [4u64, 12, 45, 180, 750, 3_200, 12_000];
        let base = sizes[attr_pick(key, A_EMPLOYEES, sizes.len())];
        j.kv_u64(
            "employees",
            base + attr(key, A_EMPLOYEES + 1) % (base / 2 + 1),
        );
        j.kv_str(
            "plan",
            GROUP_PLANS[attr_pick(key, A_COMPANY_PLAN, GROUP_PLANS.len())],
        );
        let since = START_MS - 86_400_000 * (30 + (attr(key, A_COMPANY_SINCE) % 2_000) as i64);
        j.kv_ts("created_at", since);
        j.end_obj();
    }

    fn server_track(&mut self, j: &mut Json, p: u32) {
        let k = self.persons[p as usize].key;
        let currency = currency(PLACES[attr_pick(k, A_PLACE, PLACES.len())].1);
        match self.rng.below(3) {
            0 => {
                j.kv_str("event", "Subscription Renewed");
                j.obj("properties");
                let plan = PLANS[attr_pick(k, A_PLAN, PLANS.len())];
                j.kv_str("plan", plan);
                let yearly = attr(k, 50).is_multiple_of(3);
                j.kv_str("interval", if yearly { "year" } else { "month" });
                j.kv_cents("amount", if yearly { 9_900 } else { 999 });
                j.kv_str("currency", currency);
                j.kv_ts("period_start", self.ts);
                let days = if yearly { 365 } else { 30 };
                j.kv_ts("renews_at", self.ts + days * 86_400_000);
                j.end_obj();
            }
            1 => {
                j.kv_str("event", "Invoice Paid");
                j.obj("properties");
                j.key("invoice_id");
                j.open_str();
                j.raw("in_");
                j.base36(self.rng.next_u64());
                j.close_str();
                let n = self.rng.range(1, 3);
                let mut total = 0;
                j.arr("line_items");
                for _ in 0..n {
                    let pr = self.rng.pick(PRODUCTS);
                    let qty = self.rng.range(1, 2);
                    total += pr.price_cents * qty;
                    j.begin_obj();
                    j.kv_str("description", pr.name);
                    j.kv_u64("quantity", qty);
                    j.kv_cents("amount", pr.price_cents * qty);
                    j.end_obj();
                }
                j.end_arr();
                j.kv_cents("amount", total);
                j.kv_str("currency", currency);
                j.kv_ts("paid_at", self.ts);
                j.end_obj();
            }
            _ => {
                j.kv_str("event", "Order Shipped");
                j.obj("properties");
                j.key("order_id");
                j.open_str();
                j.raw("ORD-");
                j.digits(100_000 + self.rng.below(self.order_counter.max(1)));
                j.close_str();
                j.kv_str("carrier", self.rng.pick_str(SHIPPING_CARRIERS));
                j.key("tracking_number");
                j.open_str();
                j.raw("1Z");
                j.hex_upper(self.rng.next_u64(), 16);
                j.close_str();
                j.kv_u64("items", self.rng.range(1, 4));
                j.kv_ts("shipped_at", self.ts);
                j.kv_ts("estimated_delivery", self.ts + 3 * 86_400_000);
                j.end_obj();
            }
        }
    }

    fn track_body(&mut self, j: &mut Json, mobile: bool, slot: usize, t: Tr) {
        let p = if mobile {
            self.mobile[slot].person
        } else {
            self.web[slot].person
        };
        let pkey = self.persons[p as usize].key;
        let currency = currency(PLACES[attr_pick(pkey, A_PLACE, PLACES.len())].1);
        match t {
            Tr::ProductViewed | Tr::ProductAdded | Tr::ProductRemoved => {
                let s = self.session(mobile, slot);
                let pr_idx = match t {
                    Tr::ProductRemoved => s.cart.pop().map_or(0, |(i, _)| i),
                    _ => s.product.unwrap_or(0),
                };
                let cart_key = s.cart_key;
                let qty = if t == Tr::ProductAdded {
                    let q = 1 + u8::from(self.rng.chance(0.2));
                    self.session(mobile, slot).cart.push((pr_idx, q));
                    q
                } else {
                    1
                };
                let pr = &PRODUCTS[usize::from(pr_idx)];
                j.kv_str(
                    "event",
                    match t {
                        Tr::ProductViewed => "Product Viewed",
                        Tr::ProductAdded => "Product Added",
                        _ => "Product Removed",
                    },
                );
                j.obj("properties");
                if t != Tr::ProductViewed {
                    j.key("cart_id");
                    j.open_str();
                    j.hex(cart_key, 16);
                    j.close_str();
                }
                j.kv_str("product_id", pr.id);
                j.kv_str("sku", pr.sku);
                j.kv_str("category", pr.category);
                j.kv_str("name", pr.name);
                j.kv_str("brand", pr.brand);
                j.kv_str("variant", VARIANTS[usize::from(pr_idx) % VARIANTS.len()]);
                j.kv_cents("price", pr.price_cents);
                j.kv_u64("quantity", u64::from(qty));
                j.kv_str("currency", currency);
                j.key("url");
                j.open_str();
                j.raw(SITE);
                j.raw("/products/");
                j.raw(pr.slug);
                j.close_str();
                if t == Tr::ProductViewed {
                    j.key("image_url");
                    j.open_str();
                    j.raw("https://cdn.shopwave.example/img/");
                    j.raw(pr.sku);
                    j.raw(".jpg");
                    j.close_str();
                    j.kv_cents("rating", 350 + (attr(u64::from(pr_idx), 60) % 150));
                    j.kv_u64("review_count", attr(u64::from(pr_idx), 61) % 2_400);
                    j.kv_bool("in_stock", self.rng.chance(0.93));
                }
                j.end_obj();
            }
            Tr::CartViewed | Tr::CheckoutStarted | Tr::OrderCompleted => {
                let s = self.session(mobile, slot);
                let cart = std::mem::take(&mut s.cart);
                let cart_key = s.cart_key;
                let subtotal: u64 = cart
                    .iter()
                    .map(|&(i, q)| PRODUCTS[usize::from(i)].price_cents * u64::from(q))
                    .sum();
                let coupon = attr(cart_key, 70)
                    .is_multiple_of(4)
                    .then(|| COUPONS[attr_pick(cart_key, 71, COUPONS.len())]);
                let discount = coupon.map_or(0, |c| subtotal * c.2 / 100);
                let shipping = if subtotal >= 5_000 || coupon.is_some_and(|c| c.2 == 0) {
                    0
                } else {
                    499
                };
                let revenue = subtotal - discount;
                let tax = revenue * 8 / 100;
                let total = revenue + shipping + tax;
                j.kv_str(
                    "event",
                    match t {
                        Tr::CartViewed => "Cart Viewed",
                        Tr::CheckoutStarted => "Checkout Started",
                        _ => "Order Completed",
                    },
                );
                j.obj("properties");
                j.key("cart_id");
                j.open_str();
                j.hex(cart_key, 16);
                j.close_str();
                if t != Tr::CartViewed {
                    if t == Tr::OrderCompleted {
                        self.order_counter += 1;
                    }
                    j.key("order_id");
                    j.open_str();
                    j.raw("ORD-");
                    j.digits(100_000 + self.order_counter);
                    j.close_str();
                    j.kv_str(
                        "affiliation",
                        if mobile {
                            "ShopWave App"
                        } else {
                            "ShopWave Online"
                        },
                    );
                    j.kv_cents("subtotal", subtotal);
                    j.kv_cents("total", total);
                    j.kv_cents("revenue", revenue);
                    j.kv_cents("shipping", shipping);
                    j.kv_cents("tax", tax);
                    j.kv_cents("discount", discount);
                    j.key("coupon");
                    match coupon {
                        Some(c) => j.str(c.0),
                        None => j.null(),
                    }
                    j.kv_str("currency", currency);
                }
                j.arr("products");
                for (pos, &(i, q)) in cart.iter().enumerate() {
                    let pr = &PRODUCTS[usize::from(i)];
                    j.begin_obj();
                    j.kv_str("product_id", pr.id);
                    j.kv_str("sku", pr.sku);
                    j.kv_str("name", pr.name);
                    j.kv_cents("price", pr.price_cents);
                    j.kv_u64("quantity", u64::from(q));
                    j.kv_str("category", pr.category);
                    j.kv_u64("position", pos as u64 + 1);
                    j.end_obj();
                }
                j.end_arr();
                if t == Tr::OrderCompleted {
                    let first = self.persons[p as usize].orders == 0;
                    j.kv_str("payment_method", self.rng.pick_str(PAYMENT_METHODS));
                    j.kv_bool("is_first_order", first);
                    j.kv_ts("completed_at", self.ts);
                    self.persons[p as usize].orders += 1;
                }
                let s = self.session(mobile, slot);
                s.cart = cart;
                match t {
                    Tr::CheckoutStarted => s.checkout = true,
                    Tr::OrderCompleted => {
                        s.checkout = false;
                        s.cart.clear();
                        s.cart_key = mix64(s.cart_key);
                    }
                    _ => {}
                }
                j.end_obj();
            }
            Tr::CouponApplied => {
                let cart_key = self.session(mobile, slot).cart_key;
                let c = COUPONS[attr_pick(cart_key, 71, COUPONS.len())];
                j.kv_str("event", "Coupon Applied");
                j.obj("properties");
                j.key("cart_id");
                j.open_str();
                j.hex(cart_key, 16);
                j.close_str();
                j.kv_str("coupon_id", c.0);
                j.kv_str("coupon_name", c.1);
                j.kv_u64("discount_percent", c.2);
                j.end_obj();
            }
            Tr::ProductListViewed => {
                let cat = match self.session(mobile, slot).page {
                    PageRef::Category(c) if !mobile => usize::from(c),
                    _ => self.rng.index(PRODUCT_CATEGORIES.len()),
                };
                let (cat_name, cat_slug) = PRODUCT_CATEGORIES[cat];
                j.kv_str("event", "Product List Viewed");
                j.obj("properties");
                j.kv_str("list_id", cat_slug);
                j.kv_str("category", cat_name);
                j.arr("products");
                let mut pos = 0;
                for pr in PRODUCTS.iter().filter(|p| p.category == cat_name).take(4) {
                    pos += 1;
                    j.begin_obj();
                    j.kv_str("product_id", pr.id);
                    j.kv_str("sku", pr.sku);
                    j.kv_str("name", pr.name);
                    j.kv_cents("price", pr.price_cents);
                    j.kv_u64("position", pos);
                    j.end_obj();
                }
                j.end_arr();
                j.end_obj();
            }
            Tr::ProductsSearched => {
                let q = match self.session(mobile, slot).page {
                    PageRef::Search(q) if !mobile => usize::from(q),
                    _ => self.rng.index(SEARCHES.len()),
                };
                j.kv_str("event", "Products Searched");
                j.obj("properties");
                j.kv_str("query", SEARCHES[q].0);
                j.kv_u64("results_count", attr(q as u64, 80) % 60);
                if self.rng.chance(0.3) {
                    j.obj("filters");
                    j.kv_bool("in_stock", true);
                    j.kv_cents("max_price", 10_000);
                    j.end_obj();
                }
                j.end_obj();
            }
            Tr::VideoStarted | Tr::VideoCompleted => {
                let v = match self.session(mobile, slot).video {
                    Some(v) => v,
                    None => self.rng.index(VIDEOS.len()) as u8,
                };
                let (asset, title, length) = VIDEOS[usize::from(v)];
                let started = t == Tr::VideoStarted;
                self.session(mobile, slot).video = started.then_some(v);
                j.kv_str(
                    "event",
                    if started {
                        "Video Playback Started"
                    } else {
                        "Video Playback Completed"
                    },
                );
                j.obj("properties");
                j.key("session_id");
                j.open_str();
                j.hex(self.session(mobile, slot).cart_key ^ u64::from(v), 12);
                j.close_str();
                j.kv_str("content_asset_id", asset);
                j.kv_str("title", title);
                j.kv_u64("position", if started { 0 } else { length });
                j.kv_u64("total_length", length);
                j.kv_u64("bitrate", *self.rng.pick(&[1_500, 3_000, 4_500, 6_000]));
                j.kv_cents("framerate", *self.rng.pick(&[2_997, 3_000, 6_000]));
                j.kv_str("video_player", "html5");
                j.kv_u64("sound", self.rng.range(0, 100));
                j.kv_bool("full_screen", self.rng.chance(0.3));
                j.kv_bool("ad_enabled", false);
                j.kv_str("quality", self.rng.pick_str(VIDEO_QUALITIES));
                j.end_obj();
            }
            Tr::ButtonClicked => {
                let (id, label, location) = *self.rng.pick(BUTTONS);
                j.kv_str("event", "Button Clicked");
                j.obj("properties");
                j.kv_str("button_id", id);
                j.kv_str("label", label);
                j.kv_str("location", location);
                j.end_obj();
            }
            Tr::SignedUp | Tr::SignedIn => {
                let method = SIGNUP_METHODS[attr_pick(pkey, A_METHOD, SIGNUP_METHODS.len())];
                if t == Tr::SignedUp {
                    j.kv_str("event", "Signed Up");
                    j.obj("properties");
                    j.kv_str("method", method);
                    j.kv_str("plan", PLANS[attr_pick(pkey, A_PLAN, PLANS.len())]);
                    j.kv_bool("trial", self.rng.chance(0.4));
                    if self.rng.chance(0.15) {
                        j.key("referral_code");
                        j.open_str();
                        j.raw("REF-");
                        j.hex_upper(self.rng.next_u64(), 6);
                        j.close_str();
                    }
                } else {
                    j.kv_str("event", "Signed In");
                    j.obj("properties");
                    j.kv_str("method", method);
                    j.kv_bool("remember_me", self.rng.chance(0.6));
                }
                j.end_obj();
            }
            Tr::AppInstalled | Tr::AppOpened => {
                let d = self.session(mobile, slot).device;
                let (version, build) = APP_VERSIONS[attr_pick(
                    self.devices[d as usize].key,
                    A_APP_VERSION,
                    APP_VERSIONS.len(),
                )];
                let installed = t == Tr::AppInstalled;
                j.kv_str(
                    "event",
                    if installed {
                        "Application Installed"
                    } else {
                        "Application Opened"
                    },
                );
                j.obj("properties");
                j.kv_str("build", build);
                j.kv_str("version", version);
                if !installed {
                    j.kv_bool("from_background", self.rng.chance(0.4));
                }
                j.end_obj();
            }
            Tr::AppBackgrounded => {
                j.kv_str("event", "Application Backgrounded");
                j.obj("properties");
                j.end_obj();
            }
            Tr::PushTapped => {
                let (id, title) = *self.rng.pick(PUSH_CAMPAIGNS);
                j.kv_str("event", "Push Notification Tapped");
                j.obj("properties");
                j.kv_str("campaign_id", id);
                j.kv_str("title", title);
                j.kv_ts(
                    "sent_at",
                    self.ts - self.rng.range(10_000, 7_200_000) as i64,
                );
                j.end_obj();
            }
        }
    }
}

/// Source for a channel (0 web, 1 mobile, 2 server): sources are assigned
/// round-robin to channels (1 → web, 2 → mobile, 3 → server, 4 → web, …);
/// a channel without a source of its own falls back to `channel % n`.
fn source_for(channel: u32, sources: u32, pick: u64) -> u32 {
    let own = if sources > channel {
        (sources - 1 - channel) / 3 + 1
    } else {
        0
    };
    if own == 0 {
        channel % sources + 1
    } else {
        channel + 1 + 3 * (pick % u64::from(own)) as u32
    }
}

fn currency(country: &str) -> &'static str {
    match country {
        "CA" => "CAD",
        "GB" => "GBP",
        "DE" | "FR" | "ES" | "NL" => "EUR",
        "SE" => "SEK",
        "BR" => "BRL",
        "AU" => "AUD",
        "JP" => "JPY",
        _ => "USD",
    }
}

fn write_ip(j: &mut Json, v: u64) {
    const FIRST: [u64; 10] = [24, 73, 81, 88, 98, 151, 176, 185, 201, 213];
    j.open_str();
    j.digits(FIRST[(v % 10) as usize]);
    for s in [8, 16, 24] {
        j.raw(".");
        j.digits((v >> s) & 0xff);
    }
    j.close_str();
}

fn page_name(p: PageRef) -> (&'static str, &'static str) {
    match p {
        PageRef::Static(i) => {
            let (_, name, category, _) = PAGES[usize::from(i)];
            (name, category)
        }
        PageRef::Product(_) => ("Product", "Shop"),
        PageRef::Category(_) => ("Category", "Shop"),
        PageRef::Search(_) => ("Search Results", "Shop"),
        PageRef::Blog(_) => ("Blog Post", "Content"),
    }
}

fn write_path(j: &mut Json, p: PageRef) {
    match p {
        PageRef::Static(i) => j.raw(PAGES[usize::from(i)].0),
        PageRef::Product(i) => {
            j.raw("/products/");
            j.raw(PRODUCTS[usize::from(i)].slug);
        }
        PageRef::Category(i) => {
            j.raw("/c/");
            j.raw(PRODUCT_CATEGORIES[usize::from(i)].1);
        }
        PageRef::Search(_) => j.raw("/search"),
        PageRef::Blog(i) => {
            j.raw("/blog/");
            j.raw(BLOG[usize::from(i)].0);
        }
    }
}

fn write_search(j: &mut Json, p: PageRef, campaign: Option<u8>) {
    if let PageRef::Search(q) = p {
        j.raw("?q=");
        j.raw(SEARCHES[usize::from(q)].1);
    } else if let Some(c) = campaign {
        j.raw(CAMPAIGNS[usize::from(c)].3);
    }
}

fn write_url(j: &mut Json, p: PageRef, campaign: Option<u8>) {
    j.raw(SITE);
    write_path(j, p);
    write_search(j, p, campaign);
}

/// `path`, `referrer`, `search`, `title`, `url` of a page.
fn write_page_fields(j: &mut Json, p: PageRef, referrer: Referrer, campaign: Option<u8>) {
    j.key("path");
    j.open_str();
    write_path(j, p);
    j.close_str();
    j.key("referrer");
    match referrer {
        Referrer::External(i) => j.str(REFERRERS[usize::from(i)]),
        Referrer::Campaign(c) => j.str(CAMPAIGNS[usize::from(c)].4),
        Referrer::Internal(r) => {
            j.open_str();
            write_url(j, r, None);
            j.close_str();
        }
    }
    j.key("search");
    j.open_str();
    write_search(j, p, campaign);
    j.close_str();
    j.key("title");
    match p {
        PageRef::Static(i) => j.str(PAGES[usize::from(i)].3),
        PageRef::Product(i) => j.str_cat(&[PRODUCTS[usize::from(i)].name, " | ShopWave"]),
        PageRef::Category(i) => j.str_cat(&[PRODUCT_CATEGORIES[usize::from(i)].0, " | ShopWave"]),
        PageRef::Search(q) => j.str_cat(&[
            "Search results for “",
            SEARCHES[usize::from(q)].0,
            "” | ShopWave",
        ]),
        PageRef::Blog(i) => j.str_cat(&[BLOG[usize::from(i)].1, " — The ShopWave Journal"]),
    }
    j.key("url");
    j.open_str();
    write_url(j, p, campaign);
    j.close_str();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_channel() {
        // One source: everything goes to source 1.
        assert_eq!(
            (0..3).map(|c| source_for(c, 1, 0)).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        // Two: web 1, mobile 2, server falls back to 1.
        assert_eq!(
            (0..3).map(|c| source_for(c, 2, 0)).collect::<Vec<_>>(),
            [1, 2, 1]
        );
        assert_eq!(
            (0..3).map(|c| source_for(c, 3, 0)).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // Five: web uses 1 and 4, mobile 2 and 5, server 3.
        assert_eq!(source_for(0, 5, 1), 4);
        assert_eq!(source_for(1, 5, 1), 5);
        assert_eq!(source_for(2, 5, 1), 3);
    }

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
