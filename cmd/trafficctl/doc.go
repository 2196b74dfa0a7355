// Command trafficctl is one binary: `trafficctl controller` runs the controller; the other
// verbs are the command line that shows and steers rollouts. Installed as kubectl-trafficctl on
// the PATH, it is also a kubectl plugin: `kubectl trafficctl status podinfo`.
package main
