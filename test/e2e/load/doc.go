// Package load plays the users of an e2e scenario: it calls one URL at a fixed rate and records
// what each call got back, by the version that answered (the X-Version header of the demo app)
// and by status code. The schedule is open-loop, like real users who do not wait for each
// other, so a slow or failing version cannot lower the load it receives; scenarios assert on
// these counts rather than on the controller's own view.
package load
