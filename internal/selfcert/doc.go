// Package selfcert makes self-signed TLS certificates for 127.0.0.1 and
// localhost: for the tests, and for the node that roomd bench measures over
// TLS. It knows nothing of roomd.
package selfcert
