//! The simulated world's types: people, their devices and sessions, the
//! pages and calls a session is made of, and how a payload's context looks.

use std::collections::VecDeque;

use crate::catalog::PAGE_HOME;

/// "No such entity" marker for `u32` indexes.
pub(super) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Platform {
    Web,
    Ios,
    Android,
}

/// A human visitor. Becomes a *user* (gets a `userId`) on sign-up.
#[derive(Debug)]
pub(super) struct Person {
    pub(super) key: u64,
    /// Identity-graph node of the userId, `NONE` until sign-up.
    pub(super) user_node: u32,
    pub(super) signed_up_at: i64,
    /// Number in the current e-mail address (unique across the stream).
    pub(super) email_no: u64,
    pub(super) email_emitted: bool,
    pub(super) user_emitted: bool,
    pub(super) will_sign_up: bool,
    pub(super) company: u32,
    pub(super) sessions: u32,
    pub(super) orders: u32,
    pub(super) devices: Vec<u32>,
}

/// A browser profile or an app install.
#[derive(Debug)]
pub(super) struct Device {
    pub(super) key: u64,
    pub(super) platform: Platform,
    /// The person whose device it is (locale, timezone).
    pub(super) owner: u32,
    /// Identity-graph node of the current anonymousId.
    pub(super) anon: u32,
    /// Person currently logged in on the device, or `NONE`.
    pub(super) logged_in: u32,
    pub(super) source: u32,
    /// In an active session (a device runs one session at a time).
    pub(super) busy: bool,
}

/// A pointer to a page of the web shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageRef {
    Static(u8),
    Product(u8),
    Category(u8),
    Search(u8),
    Blog(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Referrer {
    External(u8),
    /// The site that ran the campaign the visitor came from.
    Campaign(u8),
    Internal(PageRef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ident {
    Signup,
    Login,
    Refresh,
    EmailChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tr {
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
pub(super) enum Action {
    Page(PageRef),
    Screen(u8),
    Track(Tr),
    Identify(Ident),
    Group,
    Alias,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Signup,
    Login,
    Refresh,
    EmailChange,
}

/// One visit: a run of events from one device, interleaved with others.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) active: bool,
    pub(super) device: u32,
    pub(super) person: u32,
    /// Normal (unscripted) actions left.
    pub(super) remaining: u32,
    pub(super) step: u32,
    pub(super) pending: VecDeque<Action>,
    pub(super) trigger: Option<(u32, Flow)>,
    pub(super) page: PageRef,
    pub(super) referrer: Referrer,
    pub(super) campaign: Option<u8>,
    /// No page call yet: the first keeps the external referrer.
    pub(super) fresh: bool,
    pub(super) screen: u8,
    pub(super) product: Option<u8>,
    pub(super) cart: Vec<(u8, u8)>,
    pub(super) cart_key: u64,
    pub(super) checkout: bool,
    pub(super) video: Option<u8>,
}

impl Session {
    pub(super) fn idle() -> Session {
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

    pub(super) fn finished(&self) -> bool {
        self.remaining == 0 && self.pending.is_empty() && self.trigger.is_none()
    }
}

/// How an event's context and messageId look.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ctx {
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
