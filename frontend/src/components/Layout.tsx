import { useEffect, useRef, useState } from "react";
import { NavLink, Outlet, useLocation } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";

const NAV = [
  { to: "/agents", label: "Agents", icon: "◎" },
  { to: "/numbers", label: "Phone numbers", icon: "☎" },
  { to: "/knowledge", label: "Knowledge", icon: "❏" },
  { to: "/campaigns", label: "Campaigns", icon: "⇶" },
  { to: "/live", label: "Live", icon: "●" },
  { to: "/calls", label: "Call log", icon: "≣" },
  { to: "/analytics", label: "Analytics", icon: "▤" },
  { to: "/test-call", label: "Test call", icon: "◉" },
  { to: "/settings", label: "Settings", icon: "⚙" },
];

export function Layout() {
  const { me, signOut } = useAuth();
  const [menuOpen, setMenuOpen] = useState(false);
  const location = useLocation();
  const mainRef = useRef<HTMLElement>(null);

  // After a navigation (not the first load, so Tab still starts at the skip link): close the mobile menu and move
  // focus to the new page's content, as a full page load would for screen-reader users.
  const firstRender = useRef(true);
  useEffect(() => {
    setMenuOpen(false);
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    mainRef.current?.focus({ preventScroll: true });
  }, [location.pathname]);

  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setMenuOpen(false);
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [menuOpen]);

  return (
    <div className="shell">
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="topbar">
        <button
          type="button"
          className="icon-btn menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="primary-nav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          <span aria-hidden="true">☰</span>
          <span className="sr-only">Menu</span>
        </button>
        <span className="brand">
          <img src="/favicon.svg" alt="" width={22} height={22} /> Voice Agent Console
        </span>
        <span className="topbar-spacer" />
        {me && (
          <span className="whoami" title={me.user?.email}>
            <span className="whoami-org">{me.org.name}</span>
            <span className="whoami-user">{me.user?.name || me.user?.email || "API key"} · {me.role}</span>
          </span>
        )}
        <button type="button" className="btn btn-ghost" onClick={() => void signOut()}>Sign out</button>
      </header>
      <nav id="primary-nav" className={`sidenav${menuOpen ? " open" : ""}`} aria-label="Primary">
        <ul>
          {NAV.map((n) => (
            <li key={n.to}>
              <NavLink to={n.to} className={({ isActive }) => (isActive ? "active" : undefined)}>
                <span className="nav-icon" aria-hidden="true">{n.icon}</span>
                {n.label}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      {menuOpen && <div className="nav-backdrop" aria-hidden="true" onClick={() => setMenuOpen(false)} />}
      <main id="main" ref={mainRef} tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
