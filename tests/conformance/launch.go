package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"dtleconf/proto/base"
	"dtleconf/proto/drivers"
)

// handshake is Nomad's (plugins/base/plugin.go): app protocol 2 and Nomad's magic cookie.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "NOMAD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255",
}

// nomadDriverAPIVersions are the driver plugin API versions Nomad 1.6 speaks.
var nomadDriverAPIVersions = []string{"v0.1.0"}

// basePlugin and driverPlugin are the client halves of the plugin set Nomad dispenses from a
// driver plugin: "base" (BasePlugin) and "driver" (Driver), both over the one gRPC connection.
type basePlugin struct{ plugin.NetRPCUnsupportedPlugin }

type driverPlugin struct{ plugin.NetRPCUnsupportedPlugin }

// dispensed is what the "driver" plugin hands out: the Driver client and its connection (for
// the health service, which go-plugin also checks with Ping).
type dispensed struct {
	driver drivers.DriverClient
	conn   *grpc.ClientConn
}

var errClientOnly = errors.New("this program is a plugin client only")

func (basePlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return errClientOnly }

func (basePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return base.NewBasePluginClient(conn), nil
}

func (driverPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return errClientOnly }

func (driverPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return dispensed{driver: drivers.NewDriverClient(conn), conn: conn}, nil
}

// instance is one launch of the plugin binary.
type instance struct {
	label  string
	client *plugin.Client
	cmd    *exec.Cmd
	rpc    plugin.ClientProtocol
	base   base.BasePluginClient
	driver drivers.DriverClient
	conn   *grpc.ClientConn
	// How long from starting the process to a usable gRPC client (the handshake).
	startup time.Duration
}

// launch starts the binary as Nomad's plugin loader does: exec'd with no arguments, the agent's
// environment plus go-plugin's variables (cookie, port range 10000-25000, protocol versions),
// gRPC only, its stderr going to the client's logger (here: a log file).
func launch(opts *options, label string) (*instance, error) {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "client." + label,
		Output: opts.log,
		Level:  hclog.Debug,
	})
	cmd := exec.Command(opts.dtleBin)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: handshake,
		Plugins: map[string]plugin.Plugin{
			"base":   basePlugin{},
			"driver": driverPlugin{},
		},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	})
	started := time.Now()
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("starting the plugin: %w", err)
	}
	inst := &instance{label: label, client: client, cmd: cmd, rpc: rpc, startup: time.Since(started)}
	rawBase, err := rpc.Dispense("base")
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispensing base: %w", err)
	}
	rawDriver, err := rpc.Dispense("driver")
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispensing driver: %w", err)
	}
	inst.base = rawBase.(base.BasePluginClient)
	d := rawDriver.(dispensed)
	inst.driver, inst.conn = d.driver, d.conn
	return inst, nil
}

// pid is the plugin process's id, from go-plugin's reattach config (which Nomad persists).
func (i *instance) pid() int {
	if rc := i.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// health asks grpc.health.v1 for service "plugin", as go-plugin's Ping does.
func (i *instance) health(ctx context.Context) error {
	resp, err := grpc_health_v1.NewHealthClient(i.conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return err
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %v, not SERVING", resp.GetStatus())
	}
	return nil
}

// stop is go-plugin's Kill: GRPCController/Shutdown, then up to 2 s for the process to exit
// before SIGKILL. It reports an error unless the process exited by itself with status 0 within
// that time.
func (i *instance) stop() error {
	started := time.Now()
	i.client.Kill()
	took := time.Since(started)
	state := i.cmd.ProcessState
	switch {
	case state == nil:
		return fmt.Errorf("no exit status after Kill (%v)", took)
	case took >= 2*time.Second:
		return fmt.Errorf("the process did not exit within go-plugin's 2 s after Shutdown (%v, %v)", took, state)
	case !state.Success():
		return fmt.Errorf("exit status %v after Shutdown", state)
	}
	return nil
}

// reattach connects to a plugin that is still running, as a restarted Nomad client does with
// the reattach config it persisted (address and pid): no new process, no handshake line.
func reattach(opts *options, label string, rc *plugin.ReattachConfig) (*instance, error) {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "client." + label,
		Output: opts.log,
		Level:  hclog.Debug,
	})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: handshake,
		Plugins: map[string]plugin.Plugin{
			"base":   basePlugin{},
			"driver": driverPlugin{},
		},
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	})
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("reattaching to %v (pid %d): %w", rc.Addr, rc.Pid, err)
	}
	inst := &instance{label: label, client: client, rpc: rpc}
	rawBase, err := rpc.Dispense("base")
	if err != nil {
		return nil, fmt.Errorf("dispensing base: %w", err)
	}
	rawDriver, err := rpc.Dispense("driver")
	if err != nil {
		return nil, fmt.Errorf("dispensing driver: %w", err)
	}
	inst.base = rawBase.(base.BasePluginClient)
	d := rawDriver.(dispensed)
	inst.driver, inst.conn = d.driver, d.conn
	return inst, nil
}
