// Command provisioner is the test cluster's dynamic volume provisioner, the part kind's
// local-path-provisioner plays there: for each PersistentVolumeClaim of its StorageClass it makes a
// directory under -dir and a hostPath PersistentVolume for it, and removes the directory when the
// volume is released. It runs as a host process next to the kubelet of the single node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// Name is the provisioner named by the cluster's default StorageClass.
const Name = "moviebag.local/hostpath"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "provisioner:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("provisioner", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	dir := fs.String("dir", "", "directory under which volumes are made (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *dir == "" {
		return errors.New("-kubeconfig and -dir are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	pc := controller.NewProvisionController(ctx, client, Name, hostPath{dir: *dir},
		controller.LeaderElection(false))
	pc.Run(ctx)
	return nil
}

type hostPath struct{ dir string }

// Provision makes the claim's directory, writable by any user: a hostPath volume gets no fsGroup
// ownership from the kubelet, and the dev databases run as non-root users of their own.
func (h hostPath) Provision(_ context.Context, o controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	path := filepath.Join(h.dir, o.PVName)
	if err := os.MkdirAll(path, 0o777); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if err := os.Chmod(path, 0o777); err != nil { // MkdirAll's mode is filtered by the umask.
		return nil, controller.ProvisioningFinished, err
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.PVName},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: *o.StorageClass.ReclaimPolicy,
			AccessModes:                   o.PVC.Spec.AccessModes,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: o.PVC.Spec.Resources.Requests[corev1.ResourceStorage]},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path},
			},
		},
	}, controller.ProvisioningFinished, nil
}

// Delete removes the volume's directory.
func (h hostPath) Delete(_ context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.HostPath == nil || filepath.Dir(pv.Spec.HostPath.Path) != filepath.Clean(h.dir) {
		return fmt.Errorf("volume %s is not one of %s", pv.Name, h.dir)
	}
	return os.RemoveAll(pv.Spec.HostPath.Path)
}
