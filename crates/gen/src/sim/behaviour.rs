//! How the population behaves: who starts a session on which device, signs up
//! or logs in, and what a session does next.

use super::*;

impl Sim {
    pub(super) fn session(&mut self, mobile: bool, slot: usize) -> &mut Session {
        if mobile {
            &mut self.mobile[slot]
        } else {
            &mut self.web[slot]
        }
    }

    // ------------------------------------------------------------------
    // Population
    // ------------------------------------------------------------------

    pub(super) fn new_person(&mut self) -> u32 {
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

    pub(super) fn new_device(&mut self, owner: u32, platform: Platform) -> u32 {
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

    pub(super) fn next_email(&mut self, key: u64) -> u64 {
        self.email_counter += 1;
        // Unique: each counter value owns its own block of ten numbers.
        self.email_counter * 10 + attr(key ^ self.email_counter, A_EMAIL_NO) % 10
    }

    /// Gives `p` a userId (sign-up), logged in on `device`.
    pub(super) fn ensure_signed_up(&mut self, p: u32, device: u32) {
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
    pub(super) fn maybe_join_company(&mut self, p: u32) {
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

    pub(super) fn start_session(&mut self, mobile: bool, slot: usize) {
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
    pub(super) fn shared_device(&mut self, p: u32) -> Option<u32> {
        let q = self.users[self.rng.index(self.users.len())];
        if q == p {
            return None;
        }
        self.persons[q as usize].devices.iter().copied().find(|&d| {
            self.devices[d as usize].platform == Platform::Web && !self.devices[d as usize].busy
        })
    }

    pub(super) fn landing_page(&mut self) -> PageRef {
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

    pub(super) fn next_action(&mut self, mobile: bool, slot: usize) -> Action {
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

    pub(super) fn expand_flow(&mut self, mobile: bool, slot: usize, flow: Flow) {
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
    pub(super) fn shopping_track(&mut self, mobile: bool, slot: usize) -> Tr {
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

    pub(super) fn web_action(&mut self, slot: usize) -> Action {
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
    pub(super) fn follow_page(&mut self, slot: usize, page: PageRef) {
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
    pub(super) fn follow_track(&mut self, mobile: bool, slot: usize, t: Tr) {
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

    pub(super) fn mobile_action(&mut self, slot: usize) -> Action {
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
}
