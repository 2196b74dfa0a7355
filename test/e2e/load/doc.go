// Package load plays the users of an e2e scenario: it calls one URL at a fixed rate and records
// what each call got back, by the version that answered (the X-Version header of the demo app)
// and by status code. The schedule is open-loop, like real users who do not wait for each
// other, so a slow or failing version cannot lower the load it receives; scenarios assert on
// these counts rather than on the controller's own view.
//
// With Options.Users the requests are spread round-robin over that many users, each keeping
// its own cookies as a browser does, and the counts record, per user, the sequence of versions
// that answered and how often a user was switched from one version to another (a flip): what a
// session-affinity rollout must keep at zero.
package load
