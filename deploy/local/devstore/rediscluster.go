package devstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// StartRedisCluster runs a Redis Cluster of masters redis-server processes
// (no replicas) on free loopback ports, its files under dir, and returns
// its REDIS_URL (the first node, the others as addr= seeds) once every node
// reports the cluster ok.
func StartRedisCluster(ctx context.Context, dir string, masters int, logger *slog.Logger) (url string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server is not on PATH: install it (Debian: apt-get install redis-server) or run 'make deps'")
	}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	addrs := make([]string, masters)
	busPorts := make([]int, masters)
	for i := range masters {
		port, err := FreePort()
		if err != nil {
			stop()
			return "", nil, err
		}
		busPort, err := FreePort()
		if err != nil {
			stop()
			return "", nil, err
		}
		nodeDir := filepath.Join(dir, "node-"+strconv.Itoa(i))
		s, err := startRedisProcess(ctx, bin, port, nodeDir, logger,
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(busPort),
			"--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"), "--cluster-node-timeout", "2000")
		if err != nil {
			stop()
			return "", nil, err
		}
		stops = append(stops, s)
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		busPorts[i] = busPort
	}

	// Assemble it: each master gets an equal range of slots, the first
	// meets the others, then wait for every node to agree it is ok.
	clients := make([]*redis.Client, masters)
	for i, a := range addrs {
		clients[i] = redis.NewClient(&redis.Options{Addr: a, DialTimeout: 2 * time.Second})
		defer func() { _ = clients[i].Close() }()
	}
	for i, c := range clients {
		from, to := i*clusterSlots/masters, (i+1)*clusterSlots/masters-1
		if err := c.ClusterAddSlotsRange(ctx, from, to).Err(); err != nil {
			stop()
			return "", nil, fmt.Errorf("cluster addslots on %s: %w", addrs[i], err)
		}
	}
	for i := 1; i < masters; i++ {
		host, port, _ := net.SplitHostPort(addrs[i])
		// The bus port is not port+10000 here: MEET names it.
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port, busPorts[i]).Err(); err != nil {
			stop()
			return "", nil, fmt.Errorf("cluster meet %s: %w", addrs[i], err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", masters)) {
				break
			}
			if time.Now().After(deadline) {
				stop()
				return "", nil, fmt.Errorf("redis cluster not ok after 30s: %v %s", err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	seeds := make([]string, 0, masters-1)
	for _, a := range addrs[1:] {
		seeds = append(seeds, "addr="+a)
	}
	url = "redis://" + addrs[0] + "?" + strings.Join(seeds, "&")
	logger.Info("redis cluster started", "masters", masters, "url", url)
	return url, stop, nil
}

// SentinelSetup is a primary with one replica watched by one sentinel.
type SentinelSetup struct {
	// URL is the REDIS_URL: the sentinel's address and master_name.
	URL string
	// MasterName is the name the sentinel monitors the primary under.
	MasterName string
	// SentinelAddr, PrimaryAddr and ReplicaAddr are the processes' addresses
	// at start (a failover swaps the roles of the last two).
	SentinelAddr, PrimaryAddr, ReplicaAddr string
}

// StartRedisSentinel runs a primary redis-server, a replica of it and a
// sentinel monitoring them (redis-sentinel, or redis-server --sentinel
// where that is not installed), all on free loopback ports under dir.
func StartRedisSentinel(ctx context.Context, dir string, logger *slog.Logger) (setup SentinelSetup, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return setup, nil, errors.New("redis-server is not on PATH: install it (Debian: apt-get install redis-server) or run 'make deps'")
	}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return setup, nil, err
		}
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	setup = SentinelSetup{MasterName: "moviebag", PrimaryAddr: addr(ports[0]), ReplicaAddr: addr(ports[1]), SentinelAddr: addr(ports[2])}

	s, err := startRedisProcess(ctx, bin, ports[0], filepath.Join(dir, "primary"), logger)
	if err != nil {
		return setup, nil, err
	}
	stops = append(stops, s)
	if s, err = startRedisProcess(ctx, bin, ports[1], filepath.Join(dir, "replica"), logger,
		"--replicaof", "127.0.0.1", strconv.Itoa(ports[0])); err != nil {
		stop()
		return setup, nil, err
	}
	stops = append(stops, s)

	// A sentinel rewrites its configuration file: it needs one of its own.
	sdir, err := filepath.Abs(filepath.Join(dir, "sentinel"))
	if err == nil {
		err = os.MkdirAll(sdir, 0o755)
	}
	if err != nil {
		stop()
		return setup, nil, fmt.Errorf("sentinel dir: %w", err)
	}
	conf := filepath.Join(sdir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n", ports[2], sdir, filepath.Join(sdir, "sentinel.log")) +
		fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\nsentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\nsentinel parallel-syncs %[1]s 1\n", setup.MasterName, ports[0])
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		stop()
		return setup, nil, fmt.Errorf("sentinel config: %w", err)
	}
	args := []string{conf}
	sbin, lookErr := exec.LookPath("redis-sentinel")
	if lookErr != nil {
		sbin, args = bin, []string{conf, "--sentinel"}
	}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), sbin, args...)
	if err := cmd.Start(); err != nil {
		stop()
		return setup, nil, fmt.Errorf("start sentinel: %w", err)
	}
	stops = append(stops, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := waitTCP(ctx, setup.SentinelAddr, 10*time.Second); err != nil {
		stop()
		return setup, nil, fmt.Errorf("sentinel on %s: %w", setup.SentinelAddr, err)
	}
	setup.URL = "redis://" + setup.SentinelAddr + "/0?master_name=" + setup.MasterName
	logger.Info("redis primary, replica and sentinel started", "url", setup.URL)
	return setup, stop, nil
}
