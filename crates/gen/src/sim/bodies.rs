//! The bodies of calls: identify and group traits, and the properties of each
//! track event.

use super::*;

impl Sim {
    pub(super) fn write_email(&self, j: &mut Json, p: u32) {
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

    pub(super) fn email_trait(&mut self, j: &mut Json, p: u32) {
        j.key("email");
        self.write_email(j, p);
        let person = &mut self.persons[p as usize];
        if !person.email_emitted {
            person.email_emitted = true;
            self.shape.distinct_emails += 1;
        }
    }

    pub(super) fn identify_traits(&mut self, j: &mut Json, p: u32, kind: Ident) {
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

    pub(super) fn server_traits(&mut self, j: &mut Json, p: u32) {
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

    pub(super) fn group_body(&mut self, j: &mut Json, c: u32) {
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

    pub(super) fn server_track(&mut self, j: &mut Json, p: u32) {
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

    pub(super) fn track_body(&mut self, j: &mut Json, mobile: bool, slot: usize, t: Tr) {
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
